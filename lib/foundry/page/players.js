// Foundry v14's /players page: the user setup shown on a world's first
// launch ("Save and Continue").
//
// Plain JavaScript sent as source (see common.js for why).
(common) => {
  const FORM = 'form#players-config, main form, form'
  const SUBMIT = 'button[type=submit], button[data-action=submit]'

  /**
   * True once the page has loaded (its own script, which posts the form,
   * has run) and shows the form. Pressed earlier, the browser would submit
   * the form natively and Foundry would show the page again.
   */
  function ready () {
    const form = document.querySelector(FORM)
    return document.readyState === 'complete' && form !== null && form.querySelector(SUBMIT) !== null
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
