"""The dashboard's stylesheet and script, served by relaunch itself (no build step, nothing from a CDN).

The script does one thing: for each element with `data-live`, it opens an EventSource on that URL and replaces the
element's content with each `update` event's server-rendered (already escaped) HTML; while someone types in a field
of that element (a rejection's reason), the newest update waits until the field loses focus. A stream ends after a
bounded time and the browser reconnects by itself (EventSource's `retry`), so no request lives forever.
"""

from __future__ import annotations

CSS = """
:root { font-family: system-ui, sans-serif; color: #24292f; background: #fff; }
body { margin: 0; }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; padding: .6rem 1rem;
  background: #24292f; color: #fff; }
header a { color: #fff; text-decoration: none; } header a.active { text-decoration: underline; }
main { padding: 1rem; max-width: 72rem; margin: 0 auto; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #d0d7de; vertical-align: top; }
td { overflow-wrap: anywhere; }
.state { padding: 0 .4rem; border-radius: .6rem; background: #ddf4ff; white-space: nowrap; }
.state[data-state=promoted], .state[data-state=evaluated] { background: #dafbe1; }
.state[data-state=rejected], .state[data-state=failed] { background: #ffebe9; }
.state[data-state=rolled_back], .state[data-state=awaiting_approval] { background: #fff8c5; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; font-size: .8rem; }
form.inline { display: inline; } form.filters { display: flex; flex-wrap: wrap; gap: .5rem; margin-bottom: 1rem; }
button { cursor: pointer; } .fail { color: #cf222e; } .pass { color: #1a7f37; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 30rem), 1fr)); gap: 1rem; }
.note { color: #57606a; font-size: .85rem; } .flash { background: #fff8c5; padding: .5rem; }
@media (max-width: 40rem) { main { padding: .5rem; } th, td { padding: .25rem; } }
"""

JS = """
document.querySelectorAll('[data-live]').forEach(function (element) {
  var source = new EventSource(element.getAttribute('data-live')), pending = null;
  function typing() {
    var active = document.activeElement;
    return active && element.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
  }
  element.addEventListener('focusout', function () {
    setTimeout(function () {
      if (pending !== null && !typing()) { element.innerHTML = pending; pending = null; }
    }, 0);
  });
  source.addEventListener('update', function (event) {
    var html = JSON.parse(event.data).html;
    if (typing()) { pending = html; } else { element.innerHTML = html; pending = null; }
  });
});
"""
