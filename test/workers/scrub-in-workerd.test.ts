import { describe, expect, it } from 'vitest';
import { redactRejectedRecord } from '../../shared/privacy/redact.ts';
import { scrubText } from '../../shared/privacy/scrub.ts';

// The scrubber (and libphonenumber-js with its metadata) must run unchanged inside workerd.
describe('shared/privacy/scrub inside workerd', () => {
  it('replaces card numbers, obfuscated e-mails, bare phone numbers and secrets, keeps UUIDs', () => {
    expect(scrubText('Paid 4111 1111 1111 1111')).toBe('Paid [card]');
    expect(scrubText('dave(at)example.com ålice@exämple.com')).toBe('[email] [email]');
    expect(scrubText('call 4155550199 or 0612345678')).toBe('call [phone] or [phone]');
    expect(scrubText('/reset/tok_8fJ2kQ')).toBe('/reset/[secret]');
    expect(scrubText('12345678-1234-1234-1234-123456789012')).toBe('12345678-1234-1234-1234-123456789012');
    expect(redactRejectedRecord({ site: 's', message_id: 'm 4155550199', event: { userId: 'u', event: 'x@y.com' } })).toMatchObject({ message_id: 'm [phone]', event: { event: '[email]' } });
  });
});
