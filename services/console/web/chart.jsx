// One Chart.js chart per component; redrawn when its data changes.
import { useEffect, useRef } from "preact/hooks";
import {
  BarController, BarElement, CategoryScale, Chart, Filler, Legend, LinearScale, LineController, LineElement,
  PointElement, Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, Filler, Legend, LinearScale, LineController, LineElement,
  PointElement, Tooltip);

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4b5563"];

// type: "line" | "bar"; labels: x values; series: [{label, data}]
export function ChartBox({ id, title, type = "line", labels, series }) {
  const canvas = useRef(null);
  useEffect(() => {
    const chart = new Chart(canvas.current, {
      type,
      data: {
        labels,
        datasets: series.map((s, i) => ({
          label: s.label, data: s.data, borderColor: COLORS[i % COLORS.length],
          backgroundColor: COLORS[i % COLORS.length] + (type === "bar" ? "cc" : "33"),
          fill: type === "line" && series.length === 1, tension: 0.2, pointRadius: 0, borderDash: s.dash,
        })),
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
                 plugins: { legend: { display: series.length > 1 } } },
    });
    // Tests wait for this: the chart has drawn the points it was given.
    canvas.current.dataset.points = String(series.reduce((n, s) => n + s.data.filter((v) => v != null).length, 0));
    canvas.current.dataset.total = String(series.reduce((n, s) => n + s.data.reduce((a, v) => a + (v || 0), 0), 0));
    return () => chart.destroy();
  }, [JSON.stringify(labels), JSON.stringify(series), type]);
  return (
    <figure class="chart" id={id}>
      <figcaption>{title}</figcaption>
      <div class="canvas"><canvas ref={canvas} /></div>
    </figure>
  );
}
