import { it } from 'vitest'
import avro from 'avsc'
import { decodeBody } from '../../decoders/decode.js'
import { writeContainer } from '../../decoders/avro-container.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { generateEvents } from '../../generator/funnel.js'
import { options } from '../support/events.js'

it('probe', () => {
  const LONG = avro.Type.forSchema('long')
  // header map with huge count
  const hdr = Buffer.concat([Buffer.from('Obj\x01', 'latin1'), LONG.toBuffer(2 ** 24)])
  let t = Date.now()
  let r = decodeBody(hdr, { ...options('click'), encoding: 'avro', contentEncoding: 'identity', maxBytes: 1 << 20 })
  console.log('hdr', Date.now() - t, JSON.stringify(r).slice(0, 200))
  // bid record with huge cur array: build a valid bid, then hack
  const bids = generateEvents('bid', 1, 1)
  const good = writeContainer(EVENT_SCHEMAS.bid.type, bids)
  console.log('good', decodeBody(good, { ...options('bid'), encoding: 'avro', contentEncoding: 'identity', maxBytes: 1 << 20 }).ok)
  // Build record bytes: encode bid with cur [] then patch
  const b = { ...bids[0], cur: [], ext: null }
  const rec = EVENT_SCHEMAS.bid.type.toBuffer(b)
  // rec ends with cur (0 = empty array), test (0), ext (0 null branch)
  const patched = Buffer.concat([rec.subarray(0, rec.length - 3), LONG.toBuffer(2 ** 26), Buffer.from([0, 0, 0])])
  const hdrBuf = good.subarray(0, good.indexOf(Buffer.from('adgate-sync-mark'), 0) + 16)
  const body = Buffer.concat([hdrBuf, LONG.toBuffer(1), LONG.toBuffer(patched.length), patched, Buffer.from('adgate-sync-mark')])
  t = Date.now()
  r = decodeBody(body, { ...options('bid'), encoding: 'avro', contentEncoding: 'identity', maxBytes: 1 << 20 })
  console.log('arr 2^26', Date.now() - t, JSON.stringify(r).slice(0, 200), process.memoryUsage().rss/1e6)
})
