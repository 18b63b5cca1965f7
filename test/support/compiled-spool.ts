// The spool as the gateway runs it: its SQLite thread starts from the compiled module (dist/).
import type { Spool } from '../../spool/spool.js'

export async function openCompiledSpool(dir: string, maxBytes: number): Promise<Spool> {
  const { Spool: Compiled } = (await import(new URL('../../dist/spool/spool.js', import.meta.url).href)) as {
    Spool: typeof Spool
  }
  return Compiled.open(dir, maxBytes)
}
