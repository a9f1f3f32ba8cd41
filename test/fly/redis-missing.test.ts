// Without redis-server on PATH the fleet tests' Redis fails with one clear
// line, instead of an unhandled spawn error that takes the file down
// (issue 20; toolchain.md trap 15).
import t from 'tap'
import { redisMissing, startRedis } from './redis.ts'

t.test('a machine without redis-server gets one clear line', async (t) => {
  const path = process.env.PATH
  process.env.PATH = '/nonexistent'
  t.teardown(() => { process.env.PATH = path })
  t.match(redisMissing(), /^redis-server is not installed: .*apt-get install redis-server/)
  await t.rejects(startRedis(t), { message: /^redis-server is not installed/ })
})

t.test('with redis-server on PATH nothing is missing', async (t) => {
  t.equal(redisMissing(), null)
})
