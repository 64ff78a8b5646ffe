/**
 * The environment as the central processes read it. Settings are described once in
 * shared/config/settings.ts and read with the readers of shared/config/readers.ts.
 */
import { readTrimmed, type Env as SharedEnv } from '../../shared/config/readers.ts';

export type Env = SharedEnv;

/** Messages of a parse; each names the variable and the accepted form. */
export class ConfigErrors {
  readonly messages: string[] = [];
  add(message: string): void {
    this.messages.push(message);
  }
}

/** The trimmed value, undefined when unset or blank. */
export function readString(env: Env, name: string): string | undefined {
  return readTrimmed(env, name);
}
