// Foundry's /auth page: the administrator login (`#setup-authentication`).
// v11–v13: `input[name=adminPassword]`; v14: `#auth-password`, and
// `#auth-username` when an administrator user is configured.
//
// Plain JavaScript sent as source (see common.js for why).
(common) => {
  const FORM = '#setup-authentication'
  const PASSWORD = 'input[name=adminPassword], #auth-password'
  const USERNAME = '#auth-username, input[name=adminUsername]'

  /** {kind:'form', username: boolean} once the form is there, else false (for polling). */
  function probe () {
    const form = document.querySelector(FORM)
    if (form === null || form.querySelector(PASSWORD) === null) return false
    return { kind: 'form', username: form.querySelector(USERNAME) !== null }
  }

  /**
   * Fill and submit the form natively, so the browser posts exactly what
   * Foundry's page posts. Nothing typed stays behind in the page.
   */
  function submit (password, username) {
    const form = document.querySelector(FORM)
    const input = form.querySelector(PASSWORD)
    const user = form.querySelector(USERNAME)
    input.value = password
    if (user !== null && typeof username === 'string') user.value = username
    form.requestSubmit()
    setTimeout(() => { input.value = '' }, 0)
    return true
  }

  function error () {
    return common.lastError(true)
  }

  return { probe, submit, error }
}
