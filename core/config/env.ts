/** Small typed readers for environment values; each failure names the variable and the accepted form. */
export type Env = Record<string, string | undefined>;

export class ConfigErrors {
  readonly messages: string[] = [];
  add(message: string): void {
    this.messages.push(message);
  }
}

export function readInt(
  env: Env,
  name: string,
  fallback: number,
  errors: ConfigErrors,
  bounds: { min?: number; max?: number } = {},
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw.trim());
  const min = bounds.min ?? Number.MIN_SAFE_INTEGER;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    errors.add(`${name}=${JSON.stringify(raw)} is not valid: expected an integer from ${min} to ${max}`);
    return fallback;
  }
  return value;
}

export function readString(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}

export function readTopicName(env: Env, name: string, fallback: string, errors: ConfigErrors): string {
  const value = readString(env, name) ?? fallback;
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(value)) {
    errors.add(`${name}=${JSON.stringify(value)} is not a valid Kafka topic name: use letters, digits, '.', '_' or '-'`);
    return fallback;
  }
  return value;
}
