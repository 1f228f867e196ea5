/* Loaded in <head> without defer so the remembered theme applies before the first paint. */
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");
  try {
    var theme = window.localStorage.getItem("cpsync-theme");
    if (theme === "light" || theme === "dark") {
      root.setAttribute("data-theme", theme);
    }
  } catch (error) {
    /* Storage can be disabled; the system preference then applies. */
  }
})();
