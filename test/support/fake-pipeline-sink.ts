import type { RejectedRecord } from '../../schemas/rejected-record.ts';
import type { EnvelopeMessage, PipelineSink } from '../../shared/ports/pipeline-sink.ts';

/**
 * A pipeline sink standing for Kafka in unit tests: keeps what it was sent, fails the next
 * `failures` sends, and holds every send while `gate` is pending.
 */
export class RecordingPipelineSink implements PipelineSink {
  partials: EnvelopeMessage[] = [];
  rejected: RejectedRecord[] = [];
  failures = 0;
  gate: Promise<void> | undefined;

  async sendPartials(m: EnvelopeMessage): Promise<void> {
    await this.admit();
    this.partials.push({ key: m.key, value: m.value.slice() });
  }

  async sendRejected(records: readonly RejectedRecord[]): Promise<void> {
    await this.admit();
    this.rejected.push(...records);
  }

  private async admit(): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('broker unavailable (fake)');
    }
  }
}
