// pgfleet console: copy buttons for secrets shown once, and live database status.
document.querySelectorAll('button[data-copy]').forEach(function (b) {
  b.hidden = false;
  b.addEventListener('click', function () {
    var el = document.getElementById(b.getAttribute('data-copy'));
    if (!el || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(el.textContent.trim()).then(function () {
      b.textContent = 'Copied';
    });
  });
});
// While a status badge of the page says provisioning or recovering (a database) or running
// (a backup), ask its status endpoint (a few bytes of text/plain) every 2 s and update the
// badge in place: typed input and a secret shown on the page are kept.
function pgfleetBusy() {
  return Array.prototype.filter.call(document.querySelectorAll('[data-status-url]'), function (e) {
    var s = e.textContent.trim();
    return s === 'provisioning' || s === 'recovering' || s === 'running';
  });
}
function pgfleetPoll() {
  if (!pgfleetBusy().length) { return; }
  setTimeout(function () {
    Promise.all(pgfleetBusy().map(function (e) {
      return fetch(e.getAttribute('data-status-url'), { credentials: 'same-origin' })
        .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
        .then(function (t) { if (t && t.trim()) { e.textContent = t.trim(); } });
    })).then(pgfleetPoll, function () {});
  }, 2000);
}
pgfleetPoll();
