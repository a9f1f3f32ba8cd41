// Names as users give them and Foundry shows them: the Foundry base URL, world
// and user matching (exact, then case-insensitive if unique, then by id), and
// Foundry's short messages.

export function foundryBase (foundryUrl: string): URL {
  const base = new URL(foundryUrl)
  base.hash = ''
  base.search = ''
  if (!base.pathname.endsWith('/')) base.pathname += '/'
  return base
}

export function matchWorld<W extends { id: string, title: string }> (worlds: W[], name: string): W | undefined {
  return worlds.find((w) => w.title === name) ??
    unique(worlds.filter((w) => w.title.toLowerCase() === name.toLowerCase())) ??
    worlds.find((w) => w.id === name)
}

export function matchUser<U extends { id: string, name: string }> (users: U[], name: string): U | undefined {
  return users.find((u) => u.name === name) ??
    unique(users.filter((u) => u.name.toLowerCase() === name.toLowerCase())) ??
    users.find((u) => u.id === name)
}

function unique<T> (xs: T[]): T | undefined {
  return xs.length === 1 ? xs[0] : undefined
}

/** Foundry's 401 bodies are bare i18n keys; keep anything else short. */
export function foundryMessage (text: string): string {
  const t = text.trim()
  return t.length > 200 ? t.slice(0, 200) + '…' : t
}
