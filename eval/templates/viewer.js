(function () {
  var index = JSON.parse(document.getElementById('trace-index').textContent);
  var els = document.querySelectorAll('article.ep');
  var PAGE = 100, limit = PAGE;
  var f = {};
  ['f-cond', 'f-ok', 'f-true', 'f-pred', 'f-calls'].forEach(function (id) {
    f[id] = document.getElementById(id);
  });
  function fill(sel, values) {
    values.forEach(function (v) {
      var o = document.createElement('option');
      o.value = v; o.textContent = v; sel.appendChild(o);
    });
  }
  function uniq(key) {
    var seen = {}, out = [];
    index.forEach(function (e) { var v = String(e[key]); if (!seen[v]) { seen[v] = 1; out.push(v); } });
    return out.sort(function (a, b) { return (+a - +b) || (a < b ? -1 : a > b ? 1 : 0); });
  }
  fill(f['f-cond'], uniq('c')); fill(f['f-true'], uniq('t'));
  fill(f['f-pred'], uniq('p')); fill(f['f-calls'], uniq('n'));
  function match(e) {
    var c = f['f-cond'].value, ok = f['f-ok'].value, t = f['f-true'].value,
        p = f['f-pred'].value, n = f['f-calls'].value;
    return (!c || e.c === c) && (!ok || String(e.ok) === ok) && (!t || e.t === t) &&
           (!p || e.p === p) && (!n || String(e.n) === n);
  }
  var forced = null;
  function apply() {
    var shown = 0, total = 0;
    for (var i = 0; i < els.length; i++) {
      var el = els[i], e = index[+el.getAttribute('data-i')];
      var m = match(e);
      if (m) total++;
      var vis = (m && shown < limit) || el === forced;
      if (m && shown < limit) shown++;
      el.style.display = vis ? '' : 'none';
    }
    document.getElementById('count').textContent = shown + ' of ' + total + ' shown (' +
      els.length + ' episodes)';
    document.getElementById('more').style.display = total > shown ? '' : 'none';
    window.__visibleEpisodes = shown;
  }
  Object.keys(f).forEach(function (k) {
    f[k].addEventListener('change', function () { limit = PAGE; forced = null; apply(); });
  });
  document.getElementById('more').addEventListener('click', function () { limit += PAGE; apply(); });
  function openHash() {
    var h = decodeURIComponent(location.hash.replace(/^#/, ''));
    if (h.indexOf('ep=') !== 0) return;
    var el = document.getElementById('ep-' + h.slice(3));
    if (!el) return;
    Object.keys(f).forEach(function (k) { f[k].value = ''; });
    forced = el; apply();
    document.querySelectorAll('.ep.target').forEach(function (x) { x.classList.remove('target'); });
    el.classList.add('target'); el.scrollIntoView();
  }
  window.addEventListener('hashchange', openHash);
  apply(); openHash();
})();
