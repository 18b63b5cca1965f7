/**
 * How many cases a property test draws. `npm test` draws the full count. The fast unit loop
 * (`npm run test:unit`, whose config sets ADGATE_QUICK_PROPERTIES=1) draws a quarter: fast-check
 * seeds every run afresh, so repeated quick runs keep covering new cases, and CI keeps full strength.
 */
export const QUICK = process.env.ADGATE_QUICK_PROPERTIES === '1'

export function runs(full: number): number {
  return QUICK ? Math.max(10, Math.ceil(full / 4)) : full
}
