import { describe, expect, it } from 'vitest';
import { parseCoreConfig } from '../../../core/config/core-config.ts';
import { ConfigErrors } from '../../../core/config/env.ts';
import { parseReadKeys } from '../../../core/config/read-keys.ts';
import { redactSecrets, secretValues } from '../../../core/config/secrets.ts';
import { isLoopbackHost, urlHostOf } from '../../../core/listen-address.ts';
import { bearerToken, findReadKey, mayRead } from '../../../core/query/read-access.ts';

const MARK = 'SeCrEtMaRk';
const key = (tail: string): string => `rk_${MARK}_${tail}`.padEnd(32, '0');

function parse(raw: string, writeKeys?: string): { keys: ReturnType<typeof parseReadKeys>; errors: string[] } {
  const errors = new ConfigErrors();
  const keys = parseReadKeys(raw, writeKeys, errors);
  return { keys, errors: errors.messages };
}

describe('parseReadKeys', () => {
  it('reads key:site+site entries and * for every site', () => {
    const { keys, errors } = parse(` ${key('a')}:shop+blog , ${key('b')}:* `);
    expect(errors).toEqual([]);
    expect(keys).toEqual([
      { key: key('a'), sites: new Set(['shop', 'blog']), entry: 1 },
      { key: key('b'), sites: 'all', entry: 2 },
    ]);
    expect(parse('').keys).toEqual([]);
  });

  it.each([
    ['no colon', key('a'), /entry 1 has no ':'/],
    ['a short key', `rk_${MARK}:shop`, /entry 1 has a key shorter than 24/],
    ['a key with a space', `${key('a')} x:shop`, /entry 1 has a key with characters outside/],
    ['no sites', `${key('a')}:`, /entry 1 names an invalid site ""/],
    ['a bad site', `${key('a')}:shop+bad site`, /entry 1 names an invalid site "bad site"/],
    ['a repeated key', `${key('a')}:shop,${key('a')}:blog`, /entry 2 repeats the key of entry 1/],
    ['a write key', `${key('a')}:shop`, /entry 1 is also a write key/, `wk_public:shop,${key('a')}:shop`],
  ])('refuses %s, naming the entry and never the key', (_name, raw, message, writeKeys = 'wk_public:shop') => {
    const { keys, errors } = parse(raw, writeKeys);
    expect(errors).toEqual([expect.stringMatching(message)]);
    expect(errors.join('\n')).not.toContain(MARK);
    expect(keys.length).toBeLessThanOrEqual(1);
  });

  it('is part of the core configuration, and its values are masked in every CLI error', () => {
    const env = { QUERY_READ_KEYS: `${key('a')}:shop`, METRICS_TOKEN: `mt_${MARK}_0123456789` };
    const r = parseCoreConfig(env);
    expect(r.ok && r.config.queryReadKeys.map((k) => k.key)).toEqual([key('a')]);
    expect(r.ok && r.config.metricsToken).toBe(env.METRICS_TOKEN);
    const masked = redactSecrets(`failed: ${key('a')} and ${env.METRICS_TOKEN}`, secretValues(env));
    expect(masked).not.toContain(MARK);
    const bad = parseCoreConfig({ METRICS_TOKEN: MARK });
    expect(bad.ok ? '' : bad.errors.join('\n')).toMatch(/METRICS_TOKEN is not valid/);
    expect(bad.ok ? '' : bad.errors.join('\n')).not.toContain(MARK);
  });
});

describe('findReadKey', () => {
  const { keys } = parse(`${key('a')}:shop,${key('b')}:*`);

  it('finds the presented key, and nothing for a prefix, an extension or another case', () => {
    expect(findReadKey(keys, key('a'))?.entry).toBe(1);
    expect(findReadKey(keys, key('b'))?.entry).toBe(2);
    for (const wrong of [key('a').slice(0, -1), `${key('a')}0`, key('a').toUpperCase(), '', 'shop']) expect(findReadKey(keys, wrong)).toBeUndefined();
  });

  it('scopes a key to its sites', () => {
    const a = findReadKey(keys, key('a'));
    expect(a && mayRead({ sites: a.sites, name: 'a' }, 'shop')).toBe(true);
    expect(a && mayRead({ sites: a.sites, name: 'a' }, 'blog')).toBe(false);
    expect(mayRead({ sites: 'all', name: 'b' }, 'anything')).toBe(true);
  });
});

describe('bearerToken', () => {
  it.each([
    ['Bearer abc', 'abc'],
    ['bearer abc', 'abc'],
    ['Bearer  abc ', 'abc'],
    ['Basic abc', undefined],
    ['Bearer', undefined],
    ['Bearer a b', undefined],
    [undefined, undefined],
  ])('%s -> %s', (header, token) => expect(bearerToken(header)).toBe(token));
});

describe('listen addresses', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.5', false],
    ['query.internal', false],
  ])('%s is loopback: %s', (host, loopback) => expect(isLoopbackHost(host)).toBe(loopback));

  it('reads QUERY_HOST and METRICS_HOST as addresses Node can listen on', () => {
    const r = parseCoreConfig({ QUERY_HOST: '[::1]', METRICS_HOST: 'localhost' });
    expect(r.ok && [r.config.queryHost, r.config.metricsHost]).toEqual(['::1', 'localhost']);
    const bad = parseCoreConfig({ QUERY_HOST: 'http://0.0.0.0:8081' });
    expect(bad.ok ? [] : bad.errors).toEqual([expect.stringMatching(/^QUERY_HOST="http:\/\/0\.0\.0\.0:8081" is not an address to listen on/)]);
  });

  it('reaches a wildcard listener on loopback and brackets IPv6', () => {
    expect(urlHostOf('0.0.0.0')).toBe('127.0.0.1');
    expect(urlHostOf('::1')).toBe('[::1]');
    expect(urlHostOf('10.0.0.5')).toBe('10.0.0.5');
  });
});
