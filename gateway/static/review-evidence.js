"use strict";
// The evidence on the reviewer page: the item's findings listed in words, the values they name
// highlighted in both answers (by the scorer's character offsets), and the choice between an
// interleaved word diff and two plain columns. Answer text only ever enters the page as text
// nodes; findings are keyed by side (production/candidate, or A/B in blind mode) by the server.
const reviewEvidence = (() => {
  // Answers like these have no content to line up word by word with the other one.
  const NO_CONTENT = new Set(["refusal", "empty", "error", "timeout"]);
  // Below this share of words in common the diff would strike out most of one answer.
  const SHARED_MIN = 0.4;
  // Short answers are always diffed: a one-word swap reads best interleaved.
  const MIN_WORDS = 12;
  // The diff's table (answer words x answer words) above which two columns are shown instead.
  const MAX_CELLS = 4e6;

  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  // Words and the whitespace between them, each with its offset in the text.
  function tokens(text) {
    const out = [];
    const re = /\s+|\S+/g;
    let m;
    while ((m = re.exec(text)) !== null) out.push({ text: m[0], at: m.index, word: !/^\s/.test(m[0]) });
    return out;
  }

  // Word-level diff by longest common subsequence, as runs: eq and ins carry their offset in
  // `b`, del its offset in `a`. `shared`: the share of words the two have in common.
  function diffRuns(a, b) {
    const x = tokens(a), y = tokens(b);
    const n = x.length, m = y.length;
    if ((n + 1) * (m + 1) > MAX_CELLS) return null;
    const dp = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        dp[i][j] = x[i].text === y[j].text ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
    const ops = [];
    let i = 0, j = 0;
    while (i < n && j < m) {
      if (x[i].text === y[j].text) ops.push({ op: "eq", a: x[i++], b: y[j++] });
      else if (dp[i + 1][j] >= dp[i][j + 1]) ops.push({ op: "del", a: x[i++] });
      else ops.push({ op: "ins", b: y[j++] });
    }
    while (i < n) ops.push({ op: "del", a: x[i++] });
    while (j < m) ops.push({ op: "ins", b: y[j++] });
    const common = ops.filter((o) => o.op === "eq" && o.b.word).length;
    const words = x.filter((t) => t.word).length + y.filter((t) => t.word).length;
    return { runs: runsOf(ops), words, shared: words ? (2 * common) / words : 1 };
  }

  // Runs of the diff, each change whole: the space between two changed words belongs to the
  // change ("500 mg" -> "5 g" reads as one replacement, not 500 -> 5 and mg -> g), and within a
  // change what was removed comes before what was added.
  function runsOf(ops) {
    const runs = [];
    const push = (op, token) => {
      const last = runs[runs.length - 1];
      if (last && last.op === op && last.at + last.text.length === token.at) last.text += token.text;
      else runs.push({ op, text: token.text, at: token.at });
    };
    const changed = (o) => o && o.op !== "eq";
    let change = [];
    const flush = () => {
      change.filter((o) => o.a).forEach((o) => push("del", o.a));
      change.filter((o) => o.b).forEach((o) => push("ins", o.b));
      change = [];
    };
    ops.forEach((o, k) => {
      if (o.op === "eq" && !(o.b.word === false && changed(ops[k - 1]) && changed(ops[k + 1]))) {
        flush();
        push("eq", o.b);
      } else change.push(o);
    });
    flush();
    return runs;
  }

  // The scorer counts characters (code points); the page indexes UTF-16 units.
  function unitIndex(text) {
    if (!/[\uD800-\uDFFF]/.test(text)) return (cp) => Math.min(cp, text.length);
    const units = [0];
    for (const ch of text) units.push(units[units.length - 1] + ch.length);
    return (cp) => units[Math.min(cp, units.length - 1)];
  }

  // The findings' spans in one answer, as [start, end) in UTF-16 units. A span over the whole
  // answer (a refusal, a switch of language) would highlight everything, so it highlights nothing.
  function spansIn(findings, side, text) {
    const unit = unitIndex(text);
    const out = [];
    findings.forEach((f, n) => {
      const span = f.spans && f.spans[side];
      if (!span) return;
      const start = unit(span[0]), end = unit(span[1]);
      if (end <= start || (start === 0 && end >= text.length)) return;
      out.push({ start, end, n, finding: f });
    });
    return out;
  }

  // Append `text`, which sits at offset `base` of its answer, with the spans over it marked.
  function appendMarked(parent, text, base, spans) {
    const lo = base, hi = base + text.length;
    const over = spans.filter((s) => s.start < hi && s.end > lo);
    if (!over.length) { parent.append(text); return; }
    const cuts = new Set([lo, hi]);
    for (const s of over) { cuts.add(Math.max(lo, s.start)); cuts.add(Math.min(hi, s.end)); }
    const points = [...cuts].sort((p, q) => p - q);
    for (let k = 0; k + 1 < points.length; k++) {
      const p = points[k], q = points[k + 1];
      const piece = text.slice(p - lo, q - lo);
      const covering = over.filter((s) => s.start < q && s.end > p);
      if (!covering.length) { parent.append(piece); continue; }
      const mark = el("mark", "ev", piece);
      const severity = covering.map((s) => s.finding.severity).find((v) => v) || "";
      if (severity) mark.classList.add("sev-" + severity);
      if (covering.every((s) => s.finding.within_noise)) mark.classList.add("noise");
      if (covering.length > 1) mark.classList.add("multi");
      mark.dataset.f = covering.map((s) => s.n).join(" ");
      mark.title = covering.map((s) => s.finding.text).join("\n");
      parent.append(mark);
    }
  }

  function linkHover(item, n) {
    const marks = () => document.querySelectorAll('mark.ev[data-f~="' + n + '"]');
    item.addEventListener("mouseenter", () => marks().forEach((m) => m.classList.add("active")));
    item.addEventListener("mouseleave", () => marks().forEach((m) => m.classList.remove("active")));
  }

  // The findings in words, into `list` (hidden with `card` when there are none). Hovering one
  // lights up its highlights in the answers.
  function showFindings(card, list, findings, blind) {
    list.replaceChildren();
    findings.forEach((f, n) => {
      const item = el("li", f.severity ? "sev-" + f.severity : "", f.text);
      if (f.within_noise) {
        item.classList.add("noise");
        item.append(el("span", "why", blind ? " (within noise)" : " (within production's own noise)"));
      }
      linkHover(item, n);
      list.append(item);
    });
    card.classList.toggle("hidden", !findings.length);
  }

  // The two answer columns. `left`/`right`: {title, text, side}, plus `diffTitle` for the right
  // one when it shows the word diff; `noContent`: a side is a refusal, empty, an error.
  function showAnswers({ left, right, findings, noContent, nodes }) {
    const leftSpans = spansIn(findings, left.side, left.text);
    const rightSpans = spansIn(findings, right.side, right.text);
    const diff = noContent ? null : diffRuns(left.text, right.text);
    const plain = !diff || (diff.words > MIN_WORDS && diff.shared < SHARED_MIN);
    nodes.leftTitle.textContent = left.title;
    nodes.left.replaceChildren();
    appendMarked(nodes.left, left.text, 0, leftSpans);
    nodes.rightTitle.textContent = plain ? right.title : right.diffTitle;
    nodes.right.replaceChildren();
    if (plain) appendMarked(nodes.right, right.text, 0, rightSpans);
    else
      // Only the right answer's own words are highlighted here: the left column shows the
      // left answer's highlights, and over struck-out words they would hide the diff.
      for (const run of diff.runs) {
        if (run.op === "eq") { appendMarked(nodes.right, run.text, run.at, rightSpans); continue; }
        const wrap = el(run.op);
        if (run.op === "del") wrap.textContent = run.text;
        else appendMarked(wrap, run.text, run.at, rightSpans);
        nodes.right.append(wrap);
      }
    let note = "";
    if (plain && diff) note = "The answers share " + Math.round(100 * diff.shared) + "% of their words: shown side by side, without a word diff.";
    else if (plain && noContent) note = "One answer has no content to compare: shown side by side, without a word diff.";
    else if (plain) note = "The answers are too long to diff word by word: shown side by side.";
    nodes.note.textContent = note;
    nodes.note.classList.toggle("hidden", !note);
  }

  // Whether a side's flags leave nothing to diff.
  const hasNoContent = (flags) => (flags || []).some((f) => NO_CONTENT.has(f));

  return { showAnswers, showFindings, hasNoContent };
})();
