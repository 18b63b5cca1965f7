import { nativeAddon } from './native-addon.js'

/**
 * This thread's CPU time in ms (the native addon's CLOCK_THREAD_CPUTIME_ID), for the per-request
 * CPU budget: wall time also counts the time a thread waited for a core, so on a loaded machine a
 * valid body ran over its budget and was refused. Without the addon: wall time, as before.
 */
export const threadCpuMs: () => number = nativeAddon().addon?.threadCpuMs ?? (() => performance.now())
