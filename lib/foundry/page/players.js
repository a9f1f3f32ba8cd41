// Foundry v14's /players page: the user setup shown on a world's first
// launch ("Save and Continue").
//
// Plain JavaScript sent as source (see common.js for why).
(common) => {
  const FORM = 'form#players-config, main form, form'
  const SUBMIT = 'button[type=submit], button[data-action=submit]'

  /**
   * The page's own scripts have run (deferred scripts run before the
   * document leaves "loading"): before that, a submit is the browser's own
   * form submission, which Foundry's handler never sees.
   */
  function ready () {
    return document.readyState !== 'loading'
  }

  /** Press "Save and Continue"; false when the page has no such form. */
  function submit () {
    const form = document.querySelector(FORM)
    const button = form === null ? null : form.querySelector(SUBMIT)
    if (form === null || button === null) return false
    form.requestSubmit(button)
    return true
  }

  return { ready, submit }
}
