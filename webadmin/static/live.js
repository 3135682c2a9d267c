// Postern admin menu: makes the [data-live] parts of a page refresh by
// themselves while it is open. Without this script every page still works
// (forms post, pages render; progress pages refresh with a meta refresh).
(function () {
  'use strict';
  if (!document.querySelector('[data-live]')) {
    return;
  }
  var every = parseInt(document.body.getAttribute('data-refresh'), 10) || 3000;
  var state = document.getElementById('live-state');
  function say(text) {
    if (state) {
      state.textContent = text;
    }
  }
  function tick() {
    var done = document.querySelector('[data-live][data-done]');
    if (done) {
      return; // a finished job: nothing changes any more
    }
    fetch(location.href, {credentials: 'same-origin', cache: 'no-store', headers: {'X-Postern-Live': '1'}})
      .then(function (r) {
        if (r.redirected && r.url.indexOf('/login') >= 0) {
          location.assign(r.url); // the session ended
          return null;
        }
        if (!r.ok) {
          throw new Error('HTTP ' + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var doc = new DOMParser().parseFromString(html, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (el) {
          if (el.contains(document.activeElement) && document.activeElement !== document.body) {
            return; // do not pull a field away from under the user
          }
          var fresh = doc.getElementById(el.id);
          if (fresh) {
            el.replaceWith(document.importNode(fresh, true));
          }
        });
        say('updated ' + new Date().toLocaleTimeString());
      })
      .catch(function (e) {
        say('update failed (' + e.message + '); retrying');
      })
      .finally(function () {
        setTimeout(tick, every);
      });
  }
  setTimeout(tick, every);
}());
