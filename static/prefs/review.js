// Keyboard-first review: 1-4 verdict, Shift+1..3 strength, r rationale, s skip, Enter submit,
// ? help. Handlers sit on the document, so they keep working after htmx swaps in the next pair.
(function () {
  "use strict";

  const help = () => document.getElementById("keys-help");
  const form = () => document.querySelector("#review-pair form.verdict-form");

  function toggleHelp(show) {
    const dialog = help();
    if (!dialog) return;
    dialog.hidden = show === undefined ? !dialog.hidden : !show;
  }

  function setRadio(name, value) {
    const f = form();
    if (!f) return;
    const input = f.querySelector(`input[name="${name}"][value="${value}"]`);
    if (!input) return;
    input.checked = true;
    showChoice();
  }

  function showChoice() {
    const f = form();
    if (!f) return;
    const choice = f.querySelector('input[name="choice"]:checked');
    f.querySelectorAll(".response").forEach((el) => {
      el.classList.toggle("chosen", !!choice && choice.value === el.dataset.side);
    });
    const err = f.querySelector("[data-form-error]");
    if (err && choice) err.textContent = "";
  }

  function submit() {
    const f = form();
    if (!f) return;
    if (!f.querySelector('input[name="choice"]:checked')) {
      const err = f.querySelector("[data-form-error]");
      if (err) err.textContent = "Pick a verdict first: 1 left, 2 right, 3 tie, 4 both bad.";
      return;
    }
    f.requestSubmit(f.querySelector('button[type="submit"]:not([data-skip])'));
  }

  const digit = (event) => (event.code && event.code.startsWith("Digit") ? event.code.slice(5) : event.key);

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.metaKey) return;
    const target = event.target;
    const typing = target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" && target.type === "text");
    if (typing) {
      if (event.key === "Escape") target.blur();
      if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); submit(); }
      return;
    }
    if (event.ctrlKey) return;
    if (event.key === "?") { event.preventDefault(); toggleHelp(); return; }
    if (event.key === "Escape") { toggleHelp(false); return; }
    if (!help() || !help().hidden) return;

    const d = digit(event);
    if (event.shiftKey && ["1", "2", "3"].includes(d)) { event.preventDefault(); setRadio("strength", d); return; }
    if (!event.shiftKey) {
      const choices = { 1: "left", 2: "right", 3: "tie", 4: "both_bad" };
      if (choices[d]) { event.preventDefault(); setRadio("choice", choices[d]); return; }
    }
    if (event.key === "r") {
      const box = form() && form().querySelector("textarea[name=rationale]");
      if (box) { event.preventDefault(); box.focus(); }
      return;
    }
    if (event.key === "s") {
      const skip = form() && form().querySelector("button[data-skip]");
      if (skip) { event.preventDefault(); skip.click(); }
      return;
    }
    if (event.key === "Enter") {
      if (target && target.tagName === "BUTTON") return; // let a focused button do its own job
      event.preventDefault();
      submit();
    }
  });

  document.addEventListener("change", (event) => {
    if (event.target && event.target.name === "choice") showChoice();
  });
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-keys-toggle]")) toggleHelp();
  });
  // The pair on screen before a swap: a verdict checked for it must not carry over to another
  // pair, nor to the same assignment handed out again (a new revision).
  let shownPair = null;
  document.addEventListener("htmx:beforeSwap", () => {
    const f = form();
    shownPair = f ? f.dataset.pair : null;
  });
  document.addEventListener("htmx:afterSwap", () => {
    const f = form();
    if (f && shownPair !== null && f.dataset.pair !== shownPair) {
      f.querySelectorAll('input[name="choice"]').forEach((input) => { input.checked = false; });
    }
    shownPair = null;
    showChoice();
    // Back to the page, not a stale focused element from the old pair.
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  });
  document.addEventListener("DOMContentLoaded", showChoice);
})();
