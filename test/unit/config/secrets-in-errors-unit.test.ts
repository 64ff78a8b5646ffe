import { describe, expect, it } from 'vitest';
import { parseCoreConfig } from '../../../core/config/core-config.ts';
import { redactSecrets, secretValues } from '../../../core/config/secrets.ts';
import { parseEdgeConfig } from '../../../edge/config.ts';
import { parseGatewayClientConfig } from '../../../edge/gateway-config.ts';
import { urlForMessage } from '../../../shared/secret-text.ts';
import { parseWorkerConfig } from '../../../edge/worker/worker-config.ts';

// Every secret below carries MARK; a configuration error may name the variable and the entry's
// position, never any part of the value.
const MARK = 'SeCrEtMaRk';
const long = (tail: string): string => `${MARK}${tail}`.padEnd(40, 'x');

type Case = [name: string, env: Record<string, string>];

const gatewayKeyCases: Case[] = [
  ['a secret without its edge id', { GATEWAY_SIGNING_KEYS: long('nocolon') }],
  ['a secret that contains a comma', { GATEWAY_SIGNING_KEYS: `edge1:${long('a')},${long('tail')}` }],
  ['a comma then a colon inside a secret', { GATEWAY_SIGNING_KEYS: `edge1:${long('a')},${MARK}b:${MARK}c` }],
  ['a short secret', { GATEWAY_SIGNING_KEYS: `edge1:${MARK}` }],
  ['the same edge twice', { GATEWAY_SIGNING_KEYS: `edge1:${long('a')},edge1:${long('b')}` }],
  ['an invalid edge id', { GATEWAY_SIGNING_KEYS: `${MARK} id:${long('a')}` }],
];

const urlCases: Case[] = [
  ['a ClickHouse URL with a password and another scheme', { CLICKHOUSE_URL: `clickhouse://default:${MARK}@ch.example.com:9000` }],
  ['a ClickHouse value that is not a URL', { CLICKHOUSE_URL: `${MARK} pasted here` }],
  ['Kafka brokers with credentials', { KAFKA_BROKERS: `user:${MARK}@kafka:9092` }],
];

const edgeCases: Case[] = [
  ['a malformed write key entry', { TRIBUTARY_WRITE_KEYS: `wk_${MARK}:site one` }],
  ['the same write key twice', { TRIBUTARY_WRITE_KEYS: `wk_${MARK}:a,wk_${MARK}:b` }],
  ['a short pseudonym salt', { TRIBUTARY_ENV: 'production', TRIBUTARY_WRITE_KEYS: 'wk:s', PSEUDONYM_SALT: MARK.slice(0, 8) }],
];

const gatewayClientCases: Case[] = [
  ['a gateway URL with credentials over plain http', { GATEWAY_URL: `http://edge:${MARK}@gw.example.com`, GATEWAY_SIGNING_KEY: long('k') }],
  ['a gateway URL that does not parse', { GATEWAY_URL: `${MARK}:://`, GATEWAY_SIGNING_KEY: long('k') }],
  ['a short signing key', { GATEWAY_URL: 'https://gw.example.com', GATEWAY_SIGNING_KEY: MARK }],
];

function errorsOf(r: { ok: true } | { ok: false; errors: string[] }): string {
  expect(r.ok).toBe(false);
  return r.ok ? '' : r.errors.join('\n');
}

describe('configuration errors never print a secret', () => {
  it.each([...gatewayKeyCases, ...urlCases])('core: %s', (_name, env) => {
    const text = errorsOf(parseCoreConfig(env));
    expect(text).not.toContain(MARK);
    expect(text).toMatch(/GATEWAY_SIGNING_KEYS|CLICKHOUSE_URL|KAFKA_BROKERS/);
  });

  it.each(edgeCases)('edge: %s', (_name, env) => {
    const text = errorsOf(parseEdgeConfig(env, { pseudonymSaltRequired: true }));
    expect(text).not.toContain(MARK);
    expect(text).toMatch(/TRIBUTARY_WRITE_KEYS|PSEUDONYM_SALT/);
  });

  it.each(gatewayClientCases)('Workers/Deno gateway client: %s', (_name, env) => {
    const text = errorsOf(parseGatewayClientConfig(env, { defaultEdgeId: 'deno' }));
    expect(text).not.toContain(MARK);
    expect(text).toMatch(/GATEWAY_URL|GATEWAY_SIGNING_KEY/);
  });

  it.each([...edgeCases, ...gatewayClientCases])('Workers: %s', (_name, env) => {
    const text = errorsOf(parseWorkerConfig({ SALT_SOURCE: 'gateway', ...env }));
    expect(text).not.toContain(MARK);
  });

  it('names the entry by position', () => {
    const text = errorsOf(parseCoreConfig({ GATEWAY_SIGNING_KEYS: `edge1:${long('a')},${long('tail')}` }));
    expect(text).toContain('GATEWAY_SIGNING_KEYS entry 2');
  });
});

describe('urlForMessage', () => {
  it('masks user and password and keeps the rest', () => {
    expect(urlForMessage(`https://u:${MARK}@ch.example.com:8443/db`)).toBe('"https://***:***@ch.example.com:8443/db"');
  });
  it('does not quote a value that is not a URL', () => {
    expect(urlForMessage(MARK)).not.toContain(MARK);
  });
});

describe('redactSecrets', () => {
  it('masks every part of the secret variables, longest first', () => {
    const secrets = secretValues({ GATEWAY_SIGNING_KEYS: `edge1:${long('a')},edge2:${long('b')}`, PSEUDONYM_SALT: `salt-${MARK}`, PORT: '8080' });
    const text = redactSecrets(`failed: key ${long('b')} and salt salt-${MARK}; port 8080`, secrets);
    expect(text).not.toContain(MARK);
    expect(text).toContain('port 8080');
  });
  it('leaves short fragments alone', () => {
    expect(secretValues({ TRIBUTARY_WRITE_KEYS: 'wk:s' })).toEqual([]);
  });
});
