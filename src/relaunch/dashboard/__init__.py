"""The web dashboard: what relaunch did with a push, and why production serves what it serves, live, with buttons.

Server-rendered HTML, inline SVG charts and one small script (server-sent events), all served by relaunch itself.
Modules: readmodel (pure: filters, links, places), gate_report (pure: the gate's numbers), svg and html/html_ops
(pure rendering, every outside value escaped), collect (reads through the ports), actions (the CLI's code paths),
auth (the admin token), live (bounded SSE streams), web (routes).

Stable hooks for browser tests:
- runs list: `tbody#runs` (live), each row `tr[data-run-id=ID][data-state=STATE]`;
- one run (`/runs/<id>`): `section#run[data-run-id]` (live), `#run-state[data-state]`, `ol#timeline > li[data-kind]`,
  `#gate-charts svg`, buttons `button#approve-<run>`, `button#reject-<run>` (with `input[name=reason]`),
  `button#promote-<run>` (override of a gate rejection);
- pipelines (`/pipelines`): `#pipelines` (live), `#traffic-<endpoint>` (the split, e.g. `v2 100%`),
  `button#rollback-<pipeline>-<environment>`;
- inbox (`/inbox`): `table#inbox tr[data-delivery=KEY]`, `button#replay-<row index>`; `table#dead-letters`;
- sign in (`/login`): `input[name=token]`, `button#sign-in`; after an action, `#flash` says what happened.
"""
