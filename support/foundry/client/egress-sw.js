// The egress probe's service worker (see egress-probe.js): it reaches for
// the canary on install, on activate, and from its own fetch handler; its
// requests come from a target of their own, not from the page.
/* global self, CANARY */
self.addEventListener('install', (e) => {
  e.waitUntil(fetch(CANARY + '/sw-install', { mode: 'no-cors' }).catch(() => {}).then(() => self.skipWaiting()))
})
self.addEventListener('activate', (e) => {
  e.waitUntil(fetch(CANARY + '/sw-activate', { mode: 'no-cors' }).catch(() => {}).then(() => self.clients.claim()))
})
