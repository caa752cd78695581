/** A uPlot time-series chart that follows its container's width. */
import { useEffect, useRef } from "preact/hooks"
import uPlot from "uplot"

export const TimeChart = ({
  label,
  unit,
  times,
  values,
  color,
  from,
  to
}: {
  label: string
  unit: string
  times: ReadonlyArray<number>
  values: ReadonlyArray<number>
  color: string
  /** The window shown, in epoch seconds: a lone sample still sits on a sensible axis. */
  from: number
  to: number
}) => {
  const box = useRef<HTMLDivElement>(null)
  useEffect(() => {
    const el = box.current
    if (!el) return
    const width = () => Math.max(240, el.clientWidth)
    const plot = new uPlot(
      {
        width: width(),
        height: 180,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: {
          x: { time: true, range: () => [from, to] },
          y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.2)] }
        },
        axes: [
          { stroke: "#475569", grid: { stroke: "#e2e8f0" } },
          {
            stroke: "#475569",
            grid: { stroke: "#e2e8f0" },
            size: 70,
            values: (_u, v) => v.map((x) => `${x}${unit}`)
          }
        ],
        series: [
          {},
          { label, stroke: color, width: 2, fill: color + "22", points: { show: times.length < 3 } }
        ]
      },
      [times as number[], values as number[]],
      el
    )
    const ro = new ResizeObserver(() => plot.setSize({ width: width(), height: 180 }))
    ro.observe(el)
    return () => {
      ro.disconnect()
      plot.destroy()
    }
  }, [times, values, from, to])
  return (
    <figure class="chart">
      <figcaption>{label}</figcaption>
      <div ref={box} role="img" aria-label={`${label}: ${values.length} samples`} />
      {values.length === 0 ? <p class="muted chart-empty">No samples in this window yet.</p> : null}
    </figure>
  )
}
