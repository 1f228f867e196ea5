/* cpsync page behaviour. No inline scripts anywhere (CSP): everything is wired here.
   - theme toggle (#theme-toggle), remembered in localStorage
   - <time> elements rewritten into the viewer's time zone and locale, contests regrouped by local day
   - "in 3 h" / "running now" labels, refreshed every 30 s
   - X-CSRF-Token header on every htmx request, read from <meta name="csrf-token">
   - copy-to-clipboard buttons ([data-copy-target]) with a live status message
   - confirmation on forms carrying data-confirm
*/
(function () {
  "use strict";

  var root = document.documentElement;
  var THEME_KEY = "cpsync-theme";
  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  /* ---------- Theme ---------- */

  function effectiveTheme() {
    var chosen = root.getAttribute("data-theme");
    if (chosen === "light" || chosen === "dark") {
      return chosen;
    }
    return darkQuery && darkQuery.matches ? "dark" : "light";
  }

  function labelThemeToggle() {
    var button = document.getElementById("theme-toggle");
    if (!button) {
      return;
    }
    var next = effectiveTheme() === "dark" ? "light" : "dark";
    var label = "Switch to " + next + " theme";
    button.setAttribute("aria-label", label);
    button.setAttribute("title", label);
  }

  function toggleTheme() {
    var next = effectiveTheme() === "dark" ? "light" : "dark";
    root.setAttribute("data-theme", next);
    try {
      window.localStorage.setItem(THEME_KEY, next);
    } catch (error) {
      /* Not remembered, still applied. */
    }
    labelThemeToggle();
  }

  /* ---------- Local times ---------- */

  var locale = undefined; /* the browser's own locale */
  var timeOnly = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" });
  var timeWithZone = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  var dateTime = new Intl.DateTimeFormat(locale, {
    weekday: "short", day: "numeric", month: "short", hour: "numeric", minute: "2-digit", timeZoneName: "short"
  });
  var shortDate = new Intl.DateTimeFormat(locale, { weekday: "short", day: "numeric", month: "short" });
  var longDay = new Intl.DateTimeFormat(locale, { weekday: "long", day: "numeric", month: "long" });
  var fullUtc = new Intl.DateTimeFormat(locale, { dateStyle: "full", timeStyle: "short", timeZone: "UTC" });

  function localDayKey(date) {
    var month = String(date.getMonth() + 1).padStart(2, "0");
    var day = String(date.getDate()).padStart(2, "0");
    return date.getFullYear() + "-" + month + "-" + day;
  }

  function dayLabel(date) {
    var today = new Date();
    var tomorrow = new Date(today.getFullYear(), today.getMonth(), today.getDate() + 1);
    var key = localDayKey(date);
    var label = longDay.format(date);
    if (key === localDayKey(today)) {
      return "Today · " + label;
    }
    if (key === localDayKey(tomorrow)) {
      return "Tomorrow · " + label;
    }
    return label;
  }

  function parseTime(value) {
    var date = new Date(value);
    return isNaN(date.getTime()) ? null : date;
  }

  /* Inside a contest card the day is in the heading: show "14:30 – 16:30 GMT+5:30". */
  function contestTimeText(start, end) {
    if (!end) {
      return timeWithZone.format(start);
    }
    var endText = localDayKey(end) === localDayKey(start)
      ? timeWithZone.format(end)
      : shortDate.format(end) + ", " + timeWithZone.format(end);
    return timeOnly.format(start) + " – " + endText;
  }

  function localiseTimes(scope) {
    var nodes = scope.querySelectorAll("time[data-format='datetime']");
    Array.prototype.forEach.call(nodes, function (node) {
      var start = parseTime(node.getAttribute("datetime"));
      if (!start) {
        return;
      }
      var contest = node.closest(".contest");
      var end = contest ? parseTime(contest.getAttribute("data-end")) : null;
      node.textContent = contest ? contestTimeText(start, end) : dateTime.format(start);
      node.setAttribute("title", fullUtc.format(start) + " UTC");
    });
  }

  /* The server groups by UTC day; regroup the same cards by the viewer's local day. */
  function regroupByLocalDay(container) {
    var cards = Array.prototype.slice.call(container.querySelectorAll("li.contest"));
    if (!cards.length) {
      return;
    }
    var firstHeading = container.querySelector(".day-heading");
    var level = firstHeading ? firstHeading.tagName.toLowerCase() : "h2";
    var fragment = document.createDocumentFragment();
    var currentKey = null;
    var list = null;
    cards.forEach(function (card) {
      var start = parseTime(card.getAttribute("data-start"));
      var key = start ? localDayKey(start) : "unknown";
      if (key !== currentKey) {
        currentKey = key;
        var section = document.createElement("section");
        section.className = "day";
        section.setAttribute("data-day", key);
        var heading = document.createElement(level);
        heading.className = "day-heading";
        var time = document.createElement("time");
        time.setAttribute("datetime", key);
        time.textContent = start ? dayLabel(start) : "";
        heading.appendChild(time);
        list = document.createElement("ol");
        list.className = "contest-list";
        list.setAttribute("role", "list");
        section.appendChild(heading);
        section.appendChild(list);
        fragment.appendChild(section);
      }
      list.appendChild(card);
    });
    container.replaceChildren(fragment);
  }

  /* ---------- Relative labels ---------- */

  function relativeText(start, end, now) {
    if (end && now >= end) {
      return "ended";
    }
    if (now >= start) {
      return "running now";
    }
    var minutes = Math.round((start - now) / 60000);
    if (minutes < 1) {
      return "starting now";
    }
    if (minutes < 60) {
      return "in " + minutes + " min";
    }
    var hours = Math.floor(minutes / 60);
    if (hours < 6) {
      var rest = minutes % 60;
      return "in " + hours + " h" + (rest ? " " + rest + " min" : "");
    }
    if (hours < 48) {
      return "in " + Math.round(minutes / 60) + " h";
    }
    return "in " + Math.round(minutes / 1440) + " days";
  }

  function updateRelative(scope) {
    var now = Date.now();
    var cards = scope.querySelectorAll("li.contest[data-start]");
    Array.prototype.forEach.call(cards, function (card) {
      var start = parseTime(card.getAttribute("data-start"));
      var end = parseTime(card.getAttribute("data-end"));
      var label = card.querySelector("[data-relative]");
      if (!start || !label) {
        return;
      }
      var running = now >= start && (!end || now < end);
      card.classList.toggle("is-running", running);
      card.classList.toggle("is-ended", Boolean(end && now >= end));
      label.textContent = relativeText(start, end, now);
    });
  }

  /* ---------- Clipboard ---------- */

  function setStatus(button, message, isError) {
    var statusId = button.getAttribute("data-copy-status") || "copy-status";
    var status = document.getElementById(statusId);
    if (!status) {
      return;
    }
    status.textContent = message;
    status.classList.toggle("is-error", Boolean(isError));
    window.clearTimeout(status._cpsyncTimer);
    status._cpsyncTimer = window.setTimeout(function () {
      status.textContent = "";
    }, 5000);
  }

  function legacyCopy(input) {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  function copyFrom(button) {
    var input = document.getElementById(button.getAttribute("data-copy-target"));
    if (!input) {
      return;
    }
    var value = input.value;
    var done = function () { setStatus(button, "Copied to the clipboard.", false); };
    var failed = function () {
      input.focus();
      input.select();
      setStatus(button, "Could not copy automatically: the address is selected, press Ctrl+C (⌘C on a Mac).", true);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(done, function () {
        if (legacyCopy(input)) { done(); } else { failed(); }
      });
    } else if (legacyCopy(input)) {
      done();
    } else {
      failed();
    }
  }

  /* ---------- Time zone field ---------- */

  function deviceZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      return "";
    }
  }

  function setupZoneField() {
    var button = document.getElementById("use-device-zone");
    var list = document.getElementById("timezone-list");
    var zone = deviceZone();
    if (list && !list.children.length && typeof Intl.supportedValuesOf === "function") {
      var fragment = document.createDocumentFragment();
      Intl.supportedValuesOf("timeZone").forEach(function (name) {
        var option = document.createElement("option");
        option.value = name;
        fragment.appendChild(option);
      });
      list.appendChild(fragment);
    }
    if (!button || !zone) {
      return;
    }
    var input = document.getElementById(button.getAttribute("data-zone-target"));
    if (!input) {
      return;
    }
    var refresh = function () {
      button.hidden = input.value === zone;
      button.textContent = "Use " + zone;
    };
    button.addEventListener("click", function () {
      input.value = zone;
      refresh();
      input.focus();
    });
    input.addEventListener("input", refresh);
    refresh();
  }

  /* ---------- Wiring ---------- */

  function enhance(scope) {
    var groups = scope.querySelectorAll ? scope.querySelectorAll("[data-regroup]") : [];
    Array.prototype.forEach.call(groups, regroupByLocalDay);
    if (scope.matches && scope.matches("[data-regroup]")) {
      regroupByLocalDay(scope);
    }
    localiseTimes(scope);
    updateRelative(scope);
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) {
      return;
    }
    if (target.closest("#theme-toggle")) {
      toggleTheme();
      return;
    }
    var copyButton = target.closest("[data-copy-target]");
    if (copyButton) {
      copyFrom(copyButton);
      return;
    }
    /* Close open disclosure menus when clicking elsewhere. */
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(target)) {
        menu.removeAttribute("open");
      }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary && menu.contains(document.activeElement)) {
        summary.focus();
      }
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form && form.getAttribute && form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("focusin", function (event) {
    var target = event.target;
    if (target && target.id === "feed-url" && target.select) {
      target.select();
    }
  });

  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector("meta[name='csrf-token']");
    if (meta && meta.content) {
      event.detail.headers["X-CSRF-Token"] = meta.content;
    }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "contest-list") {
      target.setAttribute("aria-busy", "true");
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "contest-list") {
      target.setAttribute("aria-busy", "false");
    }
  });

  /* Fired for the initial page and for every piece of content htmx swaps in. */
  document.addEventListener("htmx:load", function (event) {
    if (event.target && event.target !== document.body) {
      enhance(event.target);
    }
  });

  if (darkQuery && darkQuery.addEventListener) {
    darkQuery.addEventListener("change", labelThemeToggle);
  }

  function start() {
    if (window.htmx) {
      root.classList.add("has-htmx");
    }
    labelThemeToggle();
    setupZoneField();
    enhance(document);
    window.setInterval(function () { updateRelative(document); }, 30000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
