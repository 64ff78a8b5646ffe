import { describe, expect, it } from 'vitest';
import { parseCoreConfig } from '../../../core/config/core-config.ts';
import { kafkaSecurityConfig } from '../../../core/config/kafka-security.ts';
import { secretValues } from '../../../core/config/secrets.ts';

const PASSWORD = 'kafka-sasl-password-SECRET-MARK';

describe('Kafka TLS and SASL settings', () => {
  it('are off unless set, and become the kafkajs ssl and sasl settings', () => {
    const none = parseCoreConfig({});
    expect(none.ok && none.config.kafkaSecurity).toBeUndefined();
    expect(kafkaSecurityConfig(undefined)).toEqual({});
    const r = parseCoreConfig({ KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'gateway', KAFKA_SASL_PASSWORD: PASSWORD });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(kafkaSecurityConfig(r.config.kafkaSecurity)).toEqual({ ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'gateway', password: PASSWORD } });
    const tlsOnly = parseCoreConfig({ KAFKA_SSL: 'true' });
    expect(tlsOnly.ok && kafkaSecurityConfig(tlsOnly.config.kafkaSecurity)).toEqual({ ssl: true });
  });

  it('refuses incomplete or unknown settings without quoting the password, which is masked as a secret', () => {
    const r = parseCoreConfig({ KAFKA_SSL: 'yes', KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_PASSWORD: PASSWORD });
    expect(r.ok ? [] : r.errors).toEqual([
      expect.stringMatching(/^KAFKA_SSL="yes" is not valid/),
      expect.stringMatching(/^KAFKA_SASL_MECHANISM="gssapi" is not valid/),
      expect.stringMatching(/needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/),
    ]);
    expect((r.ok ? [] : r.errors).join('\n')).not.toContain('SECRET-MARK');
    expect(parseCoreConfig({ KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: PASSWORD }).ok).toBe(false);
    expect(secretValues({ KAFKA_SASL_PASSWORD: PASSWORD })).toContain(PASSWORD);
  });
});
