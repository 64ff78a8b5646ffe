/** ClickHouse DateTime64(3, 'UTC') text form; unambiguous for both the server and chdb. */
export function toClickHouseTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** Parses a DateTime64(3, 'UTC') value as returned in JSON formats. */
export function fromClickHouseTime(text: string): number {
  return Date.parse(`${text.replace(' ', 'T')}Z`);
}
