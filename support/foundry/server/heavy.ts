// The heavyGame option's /game assets, for benchmarks: a big script (parse,
// compile and a retained heap), noise images (decode cost) and a tone (audio
// decode), plus the CONFIG.heavy that tells game.js to load them.
import type { Ctx } from './state.ts'

export function heavyConfig (ctx: Ctx): unknown {
  const heavy = ctx.heavy
  if (heavy === null) return null
  const images = heavy.images ?? 8
  return {
    scripts: [ctx.route('/scripts/heavy.js')],
    images: Array.from({ length: images }, (_, i) => ctx.route(`/assets/heavy-${i}.bmp`)),
    audio: ctx.route('/assets/heavy.wav'),
    canvasMs: heavy.canvasMs ?? 500
  }
}

const scriptCache = new WeakMap<Ctx, string>()
export function heavyScript (ctx: Ctx): string {
  let script = scriptCache.get(ctx)
  if (script === undefined) {
    // Many small closures (parse + compile cost) and a retained heap (like
    // Foundry's CONFIG, documents and compendium indexes).
    const bytes = ctx.heavy?.scriptBytes ?? 8 * 1024 * 1024
    const parts: string[] = ['(function(){var keep=(window.game.heavyData=window.game.heavyData||[]);']
    let n = 0
    let i = 0
    while (n < bytes) {
      const chunk: string[] = [`(function(){var o${i}={};`]
      for (let j = 0; j < 500; j++, i++) chunk.push(`o${i - j}.f${i}=function(a){return a*${i}+${i % 7}};`)
      chunk.push(`keep.push(o${i - 500});for(var k=0;k<2000;k++)keep.push({id:'d'+k+'_${i}',name:'Document '+k,system:{value:k,notes:'x'.repeat(k%64)}});})();\n`)
      const line = chunk.join('')
      parts.push(line)
      n += line.length
    }
    parts.push('})();\n')
    script = parts.join('')
    scriptCache.set(ctx, script)
  }
  return script
}

export function heavyImage (seed: number): Buffer {
  // 24-bit BMP, 512×512 (~768 KB) of noise: decode cost without compression.
  const w = 512
  const h = 512
  const row = w * 3
  const size = 54 + row * h
  const b = Buffer.alloc(size)
  b.write('BM', 0)
  b.writeUInt32LE(size, 2)
  b.writeUInt32LE(54, 10)
  b.writeUInt32LE(40, 14)
  b.writeInt32LE(w, 18)
  b.writeInt32LE(h, 22)
  b.writeUInt16LE(1, 26)
  b.writeUInt16LE(24, 28)
  b.writeUInt32LE(row * h, 34)
  let x = seed * 2654435761 >>> 0
  for (let i = 54; i < size; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24 }
  return b
}

export function heavyAudio (): Buffer {
  const rate = 22050
  const samples = rate * 5
  const b = Buffer.alloc(44 + samples * 2)
  b.write('RIFF', 0); b.writeUInt32LE(36 + samples * 2, 4); b.write('WAVE', 8); b.write('fmt ', 12)
  b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22); b.writeUInt32LE(rate, 24)
  b.writeUInt32LE(rate * 2, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34); b.write('data', 36); b.writeUInt32LE(samples * 2, 40)
  for (let i = 0; i < samples; i++) b.writeInt16LE(Math.round(Math.sin(i / 10) * 8000), 44 + i * 2)
  return b
}
