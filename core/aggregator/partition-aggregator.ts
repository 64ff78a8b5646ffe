import {
  createCardinalityCap,
  createWatermarkTracker,
  isWindowFinal,
  mergePartialInto,
  mergedWithEmpty,
  OTHER,
  type CardinalityCapSnapshot,
  type PartialEnvelope,
  type SiteValues,
  type WatermarkSnapshot,
  type WindowValues,
} from '../../shared/algebra/index.ts';
import { dimsKeyOf, type DeltaRow, type Emission, type LateRow, type WindowStatusRow } from './emission.ts';

/** Partition progress (the watermark without window rows) is recorded at most once per this much watermark advance. */
const PROGRESS_EVERY_MS = 60_000;
/** Distinct dimension tuples (and site/event pairs) remembered across emissions; past it the index restarts at the next emission. */
const MAX_REMEMBERED_KEYS = 20_000;

export interface AggregatorSettings {
  allowedLatenessMs: number;
  correctionHorizonMs: number;
  idleTimeoutMs: number;
  /**
   * A source holds the watermark back only while it sent rows within this long (heartbeats do
   * not count); default: forever. `SOURCE_DATA_TIMEOUT_MS` in the configuration.
   */
  sourceDataTimeoutMs?: number;
  /** Bound on remembered sources for (source, sequence) deduplication. */
  maxTrackedSources?: number;
  /**
   * Distinct values per (window, site, dimension) kept before folding into `__other__`
   * (`AGGREGATOR_CARDINALITY_CAP`); default {@link DEFAULT_AGGREGATOR_CARDINALITY_CAP}.
   */
  cardinalityCap?: number;
  /**
   * Windows whose value sets are remembered, least recently used evicted first (default
   * {@link DEFAULT_CAP_TRACKED_WINDOWS}); an evicted window continues with the rest of its cap
   * when it returns within `correctionHorizonMs` of the newest window seen (ADR 0017 "Amendment").
   */
  cardinalityCapWindows?: number;
}

export const DEFAULT_AGGREGATOR_CARDINALITY_CAP = 1000;
export const DEFAULT_CAP_TRACKED_WINDOWS = 16;

interface WindowState {
  sizeMs: number;
  final: boolean;
  finalizedAtMs: number | undefined;
  /** A status row is owed for this window at the next emission. */
  dirty: boolean;
  corrected: boolean;
}

// A cell is the string `window ␞ site ␞ event ␞ dimsKey`, but building that string per row
// (and keeping one per cell, with a dims copy) was a large share of the merge cost and of its
// garbage. Rows find their cell through small indexes over their strings instead: the decoder
// hands out repeated strings as the same objects, whose hashes V8 caches, so a lookup allocates
// nothing, and the key and dims of a tuple are built once, not once per cell.

/** The trie node where a distinct dimension tuple ends, which stands for that tuple. */
type DimsEntry = DimsNode & { dimsKey: string; dims: Array<[string, string]> };

/** One distinct (site, event) pair. */
interface SiteEvent {
  dirty: boolean;
}

/**
 * Trie over a tuple's (name, value) pairs; any node may end a tuple. Rows of a pipeline carry
 * the same dimension names in the same order, so each node remembers the first name seen after
 * it and looks up that name's values with one Map lookup instead of two.
 */
interface DimsNode {
  // Set once a tuple ends here. Kept on the node rather than in an object of its own: one
  // pointer less to chase per row.
  dimsKey: string | undefined;
  /** Shared, read-only, by every delta with these dimensions. */
  dims: Array<[string, string]> | undefined;
  /** Could spell the same cell string as another tuple (see {@link isDirty}). */
  dirty: boolean;
  name: string | undefined;
  values: Map<string, DimsNode> | undefined;
  otherNames: Map<string, Map<string, DimsNode>> | undefined;
}

function dimsNode(): DimsNode {
  return { dimsKey: undefined, dims: undefined, dirty: false, name: undefined, values: undefined, otherNames: undefined };
}

function valuesAfter(node: DimsNode, name: string): Map<string, DimsNode> {
  if (node.name === name) return node.values as Map<string, DimsNode>;
  if (node.name === undefined) {
    node.name = name;
    return (node.values = new Map());
  }
  node.otherNames ??= new Map();
  let values = node.otherNames.get(name);
  if (values === undefined) node.otherNames.set(name, (values = new Map()));
  return values;
}

function step(node: DimsNode, name: string, value: string): DimsNode {
  const values = valuesAfter(node, name);
  let child = values.get(value);
  if (child === undefined) values.set(value, (child = dimsNode()));
  return child;
}

/**
 * Whether a string could make two different tuples spell the same cell string: a separator
 * inside a part, or '=' inside a dimension name. Without such strings the cell string is
 * injective, so exact tuple lookup and string lookup find the same cells.
 */
function isDirty(s: string, isName: boolean): boolean {
  return s.includes('\u001e') || s.includes('\u001f') || (isName && s.includes('='));
}

/** Everything needed to resume a partition exactly where its last checkpoint left it. */
export interface PartitionSnapshot {
  lastSequence: Array<[sourceId: string, sequence: number]>;
  watermark: WatermarkSnapshot;
  windows: Array<[startMs: number, sizeMs: number, final: boolean, finalizedAtMs: number | null, corrected: boolean]>;
  /** Dimension values kept per window (absent in snapshots written before the aggregator capped). */
  caps?: CardinalityCapSnapshot;
}

export type IngestResult =
  | { kind: 'ok'; rows: number; late: number }
  | { kind: 'duplicate'; reason: 'sequence_already_seen'; lastSequence: number };

export interface PartitionAggregator {
  ingest(envelope: PartialEnvelope, nowMs: number): IngestResult;
  /** Drains the deltas gathered since the last call and decides which windows became final. */
  emit(nowMs: number): Emission;
  snapshot(): PartitionSnapshot;
  watermark(nowMs: number): number | undefined;
  openWindows(): number;
  /** Cells with a pending delta: what the next emission writes, and what memory holds until then. */
  pendingCells(): number;
}

/**
 * The aggregation state of one input partition. Emissions are deltas: the sum of all deltas of
 * a cell is its value, so a late partial inside the correction horizon is just one more delta.
 */
export function createPartitionAggregator(settings: AggregatorSettings, restore?: PartitionSnapshot, restoredAtMs?: number): PartitionAggregator {
  const maxSources = settings.maxTrackedSources ?? 100_000;
  const lastSequence = new Map<string, number>(restore?.lastSequence ?? []);
  const tracker = createWatermarkTracker({
    idleTimeoutMs: settings.idleTimeoutMs,
    ...(settings.sourceDataTimeoutMs !== undefined ? { dataTimeoutMs: settings.sourceDataTimeoutMs } : {}),
    ...(restore ? { restore: restore.watermark } : {}),
  });
  if (restore && restoredAtMs !== undefined) {
    // Last-seen times in a snapshot are the old process's clock: after downtime longer than the
    // idle timeout every source would count as idle and the first one to report would drive the
    // watermark alone while the backlog replays. A restore counts as having just heard from all,
    // and from each source that held the watermark when the snapshot was taken (its newest
    // last-seen time is that clock's "now") as having just had its data.
    const sources = tracker.sources(0);
    const snapshotAtMs = sources.reduce((max, s) => Math.max(max, s.lastSeenMs), 0);
    const held = new Set(tracker.sources(snapshotAtMs).filter((s) => s.holding).map((s) => s.sourceId));
    for (const s of sources) tracker.observe(s.sourceId, s.watermarkMs, restoredAtMs, held.has(s.sourceId) ? 'data' : 'heartbeat');
  }
  // Which values of a dimension are kept depends on the partition's input order only, and the
  // sets are checkpointed with the rest: a restore and replay folds exactly the same values.
  const caps = createCardinalityCap({
    cap: settings.cardinalityCap ?? DEFAULT_AGGREGATOR_CARDINALITY_CAP,
    trackedWindows: settings.cardinalityCapWindows ?? DEFAULT_CAP_TRACKED_WINDOWS,
    // Rows older than the correction horizon are `late` and not capped here: what the cap
    // remembers of evicted windows need not reach further back.
    horizonMs: settings.correctionHorizonMs,
    ...(restore?.caps ? { restore: restore.caps } : {}),
  });
  const windows = new Map<number, WindowState>();
  for (const [start, sizeMs, final, finalizedAtMs, corrected] of restore?.windows ?? []) {
    windows.set(start, { sizeMs, final, finalizedAtMs: finalizedAtMs ?? undefined, dirty: false, corrected });
  }
  // Deltas in the order their cells first appeared (the emission order), and by window, tuple and site/event.
  let pending: DeltaRow[] = [];
  // Few (site, event) pairs, many tuples: the pair map stays hot and the tuple map is one lookup.
  let cells = new Map<number, Map<SiteEvent, Map<DimsEntry, DeltaRow>>>();
  // Set once a dirty string shows up: the rest of the epoch finds cells by their string, as
  // before, so tuples that spell the same string still share one cell.
  let cellsByText: Map<string, DeltaRow> | undefined;
  let dimsIndex = dimsNode();
  let dimsEntries = 0;
  let siteEvents = new Map<string, Map<string, SiteEvent>>();
  let siteEventCount = 0;
  let late: LateRow[] = [];
  /** Minute (of watermark) last recorded as partition progress; in memory only: after a restore it is recorded again, harmlessly. */
  let progressMinute: number | undefined;

  // 'late' depends on the watermark alone (a function of the partition's input order), never on
  // when emissions happened to run, so a replay after a crash classifies every row the same way.
  function classify(start: number, sizeMs: number, wm: number | undefined): 'open' | 'correction' | 'late' {
    const end = start + sizeMs;
    if (wm !== undefined && wm > end + settings.correctionHorizonMs) return 'late';
    const known = windows.get(start);
    const final = known ? known.final : isWindowFinal(end, wm, settings.allowedLatenessMs);
    return final ? 'correction' : 'open';
  }

  function dimsEntryOf(dims: Array<[string, string]>): DimsEntry {
    let node = dimsIndex;
    for (let i = 0; i < dims.length; i++) {
      const [name, value] = dims[i] as [string, string];
      node = step(node, name, value);
    }
    if (node.dimsKey === undefined) {
      dimsEntries++;
      node.dimsKey = dimsKeyOf(dims);
      node.dims = dims.map(([k, v]) => [k, v]);
      node.dirty = dims.some(([k, v]) => isDirty(k, true) || isDirty(v, false));
    }
    return node as DimsEntry;
  }

  function siteEventOf(site: string, event: string): SiteEvent {
    let bySite = siteEvents.get(site);
    if (bySite === undefined) siteEvents.set(site, (bySite = new Map()));
    let se = bySite.get(event);
    if (se === undefined) {
      siteEventCount++;
      bySite.set(event, (se = { dirty: isDirty(site, false) || isDirty(event, false) }));
    }
    return se;
  }

  /** Switches the epoch to finding cells by their string, starting from the cells it already has. */
  function useCellText(): Map<string, DeltaRow> {
    cellsByText = new Map();
    for (const d of pending) cellsByText.set(`${d.windowStartMs}\u001e${d.site}\u001e${d.event}\u001e${d.dimsKey}`, d);
    return cellsByText;
  }

  return {
    ingest(envelope, nowMs) {
      const seen = lastSequence.get(envelope.sourceId);
      if (seen !== undefined && envelope.sequence <= seen) {
        return { kind: 'duplicate', reason: 'sequence_already_seen', lastSequence: seen };
      }
      lastSequence.delete(envelope.sourceId); // re-insert keeps the Map in recency order for eviction
      lastSequence.set(envelope.sourceId, envelope.sequence);
      if (lastSequence.size > maxSources) {
        const oldest = lastSequence.keys().next().value;
        if (oldest !== undefined) lastSequence.delete(oldest);
      }
      const wm = tracker.current(nowMs);
      let lateCount = 0;
      // Rows of an envelope mostly share a window: it is classified and its state touched once
      // per run of equal (start, size). Per row would give the same answers: wm is fixed during
      // an ingest and the first row of a window settles its state.
      let runStart = Number.NaN;
      let runSize = Number.NaN;
      let kind: 'open' | 'correction' | 'late' = 'open';
      let windowCells: Map<SiteEvent, Map<DimsEntry, DeltaRow>> | undefined;
      // The window's value sets (undefined: every value folds) and the last site's within it.
      let capWindow: WindowValues | undefined;
      let capSite: SiteValues | undefined;
      let capSiteName: string | undefined;
      for (const row of envelope.rows) {
        if (!(row.windowStartMs === runStart && row.windowSizeMs === runSize)) {
          runStart = row.windowStartMs;
          runSize = row.windowSizeMs;
          kind = classify(row.windowStartMs, row.windowSizeMs, wm);
          if (kind !== 'late') {
            let state = windows.get(row.windowStartMs);
            if (!state) {
              state = { sizeMs: row.windowSizeMs, final: kind === 'correction', finalizedAtMs: kind === 'correction' ? nowMs : undefined, dirty: true, corrected: false };
              windows.set(row.windowStartMs, state);
            }
            state.dirty = true;
            if (kind === 'correction') state.corrected = true;
            windowCells = cells.get(row.windowStartMs);
            if (windowCells === undefined) cells.set(row.windowStartMs, (windowCells = new Map()));
            capWindow = caps.window(row.windowStartMs);
            capSiteName = undefined;
          }
        }
        let dims = row.dimensions;
        if (kind !== 'late' && dims.length > 0) {
          if (capWindow !== undefined && capSiteName !== row.site) {
            capSite = caps.site(capWindow, row.site);
            capSiteName = row.site;
          }
          for (let i = 0; i < dims.length; i++) {
            const [name, value] = dims[i] as [string, string];
            const kept = capWindow === undefined ? OTHER : caps.keep(capSite as SiteValues, name, value);
            if (kept !== value) {
              if (dims === row.dimensions) dims = dims.map(([n, v]): [string, string] => [n, v]);
              dims[i] = [name, kept];
            }
          }
        }
        const dimsEntry = dimsEntryOf(dims);
        const dimsKey = dimsEntry.dimsKey;
        if (kind === 'late') {
          lateCount++;
          late.push({
            site: row.site,
            event: row.event,
            windowStartMs: row.windowStartMs,
            dimsKey,
            events: row.partial.count,
            reason: 'beyond_correction_horizon',
            sourceId: envelope.sourceId,
            sequence: envelope.sequence,
            watermarkMs: wm,
            receivedAtMs: nowMs,
          });
          continue;
        }
        const siteEvent = siteEventOf(row.site, row.event);
        let byText = cellsByText;
        if (byText === undefined && (dimsEntry.dirty || siteEvent.dirty)) byText = useCellText();
        let text: string | undefined;
        let byDims: Map<DimsEntry, DeltaRow> | undefined;
        let delta: DeltaRow | undefined;
        if (byText !== undefined) {
          text = `${row.windowStartMs}\u001e${row.site}\u001e${row.event}\u001e${dimsKey}`;
          delta = byText.get(text);
        } else {
          const bySiteEvent = windowCells as Map<SiteEvent, Map<DimsEntry, DeltaRow>>;
          byDims = bySiteEvent.get(siteEvent);
          if (byDims === undefined) bySiteEvent.set(siteEvent, (byDims = new Map()));
          delta = byDims.get(dimsEntry);
        }
        if (delta !== undefined) {
          mergePartialInto(delta.partial, row.partial);
          continue;
        }
        delta = {
          site: row.site,
          event: row.event,
          windowStartMs: row.windowStartMs,
          windowSizeMs: row.windowSizeMs,
          dims: dimsEntry.dims,
          dimsKey,
          partial: mergedWithEmpty(row.partial),
        };
        if (byText !== undefined) byText.set(text as string, delta);
        else (byDims as Map<DimsEntry, DeltaRow>).set(dimsEntry, delta);
        pending.push(delta);
      }
      // The envelope's own watermark applies after its rows: they were flushed before it advanced.
      tracker.observe(envelope.sourceId, envelope.watermarkMs, nowMs, envelope.rows.length > 0 ? 'data' : 'heartbeat');
      return { kind: 'ok', rows: envelope.rows.length - lateCount, late: lateCount };
    },

    emit(nowMs) {
      const wm = tracker.current(nowMs);
      const statuses: WindowStatusRow[] = [];
      for (const [start, state] of windows) {
        const end = start + state.sizeMs;
        if (!state.final && isWindowFinal(end, wm, settings.allowedLatenessMs)) {
          state.final = true;
          state.finalizedAtMs = nowMs;
          state.dirty = true;
        }
        if (state.dirty) {
          statuses.push({
            windowStartMs: start,
            windowSizeMs: state.sizeMs,
            status: state.final ? (state.corrected ? 'corrected' : 'final') : 'provisional',
            watermarkMs: wm,
            finalizedAtMs: state.finalizedAtMs,
          });
          state.dirty = false;
        }
        // Past the correction horizon a window can only produce late rows: forget it.
        if (state.final && wm !== undefined && wm > end + settings.correctionHorizonMs) windows.delete(start);
      }
      const emission: Emission = { deltas: pending, statuses, late, watermarkMs: wm };
      if (wm !== undefined && (progressMinute === undefined || Math.floor(wm / PROGRESS_EVERY_MS) > progressMinute)) {
        progressMinute = Math.floor(wm / PROGRESS_EVERY_MS);
        emission.progressMs = wm;
      }
      pending = [];
      cells = new Map();
      cellsByText = undefined;
      late = [];
      // Only between epochs: no cell may outlive the index entries it was found by.
      if (dimsEntries > MAX_REMEMBERED_KEYS) {
        dimsIndex = dimsNode();
        dimsEntries = 0;
      }
      if (siteEventCount > MAX_REMEMBERED_KEYS) {
        siteEvents = new Map();
        siteEventCount = 0;
      }
      return emission;
    },

    snapshot() {
      return {
        lastSequence: [...lastSequence],
        watermark: tracker.snapshot(),
        windows: [...windows].map(([start, s]) => [start, s.sizeMs, s.final, s.finalizedAtMs ?? null, s.corrected]),
        caps: caps.snapshot(),
      };
    },

    watermark: (nowMs) => tracker.current(nowMs),
    openWindows: () => [...windows.values()].filter((w) => !w.final).length,
    pendingCells: () => pending.length + late.length,
  };
}
