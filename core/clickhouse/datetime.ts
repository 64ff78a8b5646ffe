/** ClickHouse DateTime64(3, 'UTC') text form; unambiguous for both the server and chdb. */
export function toClickHouseTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

