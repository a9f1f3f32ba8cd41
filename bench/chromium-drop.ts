// BENCH_CHROMIUM_DROP='--flag …': launch without some of the flags the
// service adds to every Chromium (EXTRA in lib/browser/chromium.ts), to
// measure what one of them does. Chromium has no switch that undoes another
// (no --enable-gpu-compositing), so CHROMIUM_ARGS cannot do this. Imported
// first by the bench's child processes (service-proc.ts, ref-proc.ts) only:
// the service's own code path reads nothing of it.
import { EXTRA } from '../lib/browser/chromium.ts'

/** Remove `drop` from `flags` in place; a flag that is not there is an error (a typo would measure the defaults). */
export function dropFlags (flags: string[], drop: readonly string[]): void {
  for (const f of drop) {
    const i = flags.indexOf(f)
    if (i === -1) throw new Error(`BENCH_CHROMIUM_DROP: ${f} is not one of the service's default flags (${flags.join(' ')})`)
    flags.splice(i, 1)
  }
}

export const DROPPED = (process.env.BENCH_CHROMIUM_DROP ?? '').split(/\s+/).filter((a) => a !== '')
dropFlags(EXTRA, DROPPED)
