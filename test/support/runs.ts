import fc from 'fast-check'

/**
 * How many cases a property test draws. `npm test` draws the full count. The fast unit loop
 * (`npm run test:unit`, whose config sets ADGATE_QUICK_PROPERTIES=1) draws a quarter: fast-check
 * seeds every run afresh, so repeated quick runs keep covering new cases, and CI keeps full strength.
 */
export const QUICK = process.env.ADGATE_QUICK_PROPERTIES === '1'

export function runs(full: number): number {
  return QUICK ? Math.max(10, Math.ceil(full / 4)) : full
}

/**
 * The seed of this file's properties, drawn afresh each run (so runs keep covering new cases) and
 * printed, so that any run can be replayed: ADGATE_PROPERTY_SEED=<seed>. fast-check prints a
 * failing case's seed itself; this one is for a run that never finished (see hang-watchdog.ts).
 */
export const PROPERTY_SEED = process.env.ADGATE_PROPERTY_SEED
  ? Number(process.env.ADGATE_PROPERTY_SEED)
  : (Date.now() ^ (Math.random() * 2 ** 31)) | 0
fc.configureGlobal({ seed: PROPERTY_SEED })
console.log(`property seed ${PROPERTY_SEED} (replay: ADGATE_PROPERTY_SEED=${PROPERTY_SEED})`)
