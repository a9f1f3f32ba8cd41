// Foundry stand-in: the REST API module's answers to relay requests
// ({type, requestId, …} → {type: `<type>-result`, requestId, …}), shared by
// module-v2.js and module-v3.js. Only `search` is implemented: it walks every
// document the page holds (users, and on a heavy /game the retained
// `game.heavyData`, hundreds of thousands of objects) like the module's own
// search walks the world's collections, so a browser setting that slows page
// JavaScript shows up in the benchmark of a module request.
function answerRequest (data) {
  if (data.type !== 'search') {
    return { type: `${data.type}-result`, requestId: data.requestId, error: 'Not implemented by the stand-in module' }
  }
  const query = String(data.query ?? '').toLowerCase()
  const limit = Number.isInteger(data.limit) ? data.limit : 10
  const results = []
  let total = 0
  let walked = 0
  const visit = (doc) => {
    walked++
    if (doc === null || typeof doc !== 'object' || typeof doc.name !== 'string') return
    if (!doc.name.toLowerCase().includes(query)) return
    total++
    if (results.length < limit) results.push({ id: doc.id ?? doc._id, name: doc.name, value: doc.system?.value ?? null })
  }
  for (const u of game.users ?? []) visit(u)
  for (const d of game.heavyData ?? []) visit(d)
  return { type: 'search-result', requestId: data.requestId, query: data.query ?? '', total, walked, results }
}
