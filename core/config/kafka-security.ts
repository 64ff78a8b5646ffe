import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { readString, type ConfigErrors, type Env } from './env.ts';

/** How our Kafka clients authenticate: TLS and/or SASL (`KAFKA_SSL`, `KAFKA_SASL_*`). */
export interface KafkaSecurity {
  ssl: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

const MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

/**
 * Reads `KAFKA_SSL` (`true`/`false`), `KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME` and
 * `KAFKA_SASL_PASSWORD` (a secret: never quoted). Undefined when none is set: plaintext, no
 * authentication, as before.
 *
 * @example
 * parseKafkaSecurity({ KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'gateway', KAFKA_SASL_PASSWORD: '…' }, errors);
 * // { ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'gateway', password: '…' } }
 */
export function parseKafkaSecurity(env: Env, errors: ConfigErrors): KafkaSecurity | undefined {
  const sslText = readString(env, 'KAFKA_SSL');
  const mechanism = readString(env, 'KAFKA_SASL_MECHANISM');
  const username = readString(env, 'KAFKA_SASL_USERNAME');
  const password = env.KAFKA_SASL_PASSWORD === undefined || env.KAFKA_SASL_PASSWORD === '' ? undefined : env.KAFKA_SASL_PASSWORD;
  if (sslText === undefined && mechanism === undefined && username === undefined && password === undefined) return undefined;
  let ssl = false;
  if (sslText !== undefined) {
    if (sslText === 'true' || sslText === 'false') ssl = sslText === 'true';
    else errors.add(`KAFKA_SSL=${JSON.stringify(sslText.slice(0, 20))} is not valid: use true (TLS to the brokers, system CAs) or false`);
  }
  if (mechanism === undefined) {
    if (username !== undefined || password !== undefined) errors.add('KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD need KAFKA_SASL_MECHANISM (plain, scram-sha-256 or scram-sha-512)');
    return { ssl };
  }
  const m = MECHANISMS.find((x) => x === mechanism.toLowerCase());
  if (m === undefined) errors.add(`KAFKA_SASL_MECHANISM=${JSON.stringify(mechanism.slice(0, 40))} is not valid: use plain, scram-sha-256 or scram-sha-512`);
  if (username === undefined || password === undefined) errors.add(`KAFKA_SASL_MECHANISM=${mechanism} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD`);
  if (m === undefined || username === undefined || password === undefined) return { ssl };
  return { ssl, sasl: { mechanism: m, username, password } };
}

/** The kafkajs client settings for `security` (none when undefined). */
export function kafkaSecurityConfig(security: KafkaSecurity | undefined): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  if (security === undefined) return {};
  const sasl: SASLOptions | undefined = security.sasl ? { mechanism: security.sasl.mechanism, username: security.sasl.username, password: security.sasl.password } as SASLOptions : undefined;
  return { ...(security.ssl ? { ssl: true } : {}), ...(sasl ? { sasl } : {}) };
}
