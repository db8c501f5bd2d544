/* The widget manager (@jupyter-widgets/html-manager 1.x) typesets widget labels
 * with MathJax 2's API, `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`;
 * this site serves MathJax 3 (sphinx-mathjax-offline), which has no `Hub`, so
 * every widget label threw "Cannot read properties of undefined (reading
 * 'Queue')". This maps that one call onto MathJax 3's `typesetPromise`.
 * Loaded only on pages with widgets, after require.js and before the manager
 * (nb_ipywidgets_js in _config.yml); copied into the site by vendor_js.py. */
(function () {
  function install() {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.version) return; // MathJax 3 not loaded yet, or MathJax 2
    mj.Hub = {
      Queue: function (job) {
        var element = job && job[2];
        var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
        ready.then(function () {
          return mj.typesetPromise ? mj.typesetPromise(element ? [element] : undefined) : null;
        }).catch(function (err) { console.warn("MathJax could not typeset a widget label:", err); });
      }
    };
  }
  // MathJax 3 loads deferred and replaces window.MathJax: install once it has run
  document.addEventListener("DOMContentLoaded", install);
  window.addEventListener("load", install);
})();
