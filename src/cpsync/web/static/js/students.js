// Student pages: rating graph, solved-per-rating bars, schedule picker. No inline code (CSP).
(function () {
  "use strict";

  function css(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function ratingChart() {
    var canvas = document.getElementById("rating-chart");
    if (!canvas || typeof Chart === "undefined") return;
    var points = JSON.parse(canvas.dataset.points || "[]");
    canvas.chart = new Chart(canvas, {
      type: "line",
      data: {
        labels: points.map(function (p) { return p.date.slice(0, 10); }),
        datasets: [{
          label: "Rating",
          data: points.map(function (p) { return p.new_rating; }),
          borderColor: css("--accent", "#2563eb"),
          backgroundColor: css("--accent", "#2563eb"),
          tension: 0.2,
          pointRadius: 3
        }]
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              afterLabel: function (item) {
                var p = points[item.dataIndex];
                return p.contest_name + " (rank " + p.rank + ", " + (p.rating_change >= 0 ? "+" : "") + p.rating_change + ")";
              }
            }
          }
        }
      }
    });
    canvas.dataset.rendered = "true";
  }

  function bucketChart() {
    var canvas = document.getElementById("bucket-chart");
    if (!canvas || typeof Chart === "undefined") return;
    var buckets = JSON.parse(canvas.dataset.buckets || "[]");
    var unrated = parseInt(canvas.dataset.unrated || "0", 10);
    var labels = buckets.map(function (b) { return String(b.rating); });
    var values = buckets.map(function (b) { return b.solved; });
    if (unrated > 0) { labels.push("unrated"); values.push(unrated); }
    canvas.chart = new Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: "Problems solved", data: values, backgroundColor: css("--accent", "#2563eb") }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
    canvas.dataset.rendered = "true";
  }

  function schedulePicker() {
    var select = document.querySelector("[data-schedule-frequency]");
    if (!select) return;
    function update() {
      document.querySelectorAll("[data-schedule-for]").forEach(function (field) {
        field.hidden = field.dataset.scheduleFor.split(" ").indexOf(select.value) < 0;
      });
    }
    select.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    ratingChart();
    bucketChart();
    schedulePicker();
  });
})();
