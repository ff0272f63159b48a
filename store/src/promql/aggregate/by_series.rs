//! `sum`, `avg`, `count`, `min`, `max`, `group`, `stddev` and `stdvar` of a vector held
//! series by series (`sum by (mode) (rate(x[5m]))`): each series' group is looked up once
//! and its values are added into the group's row of per-step accumulators, instead of
//! every point being pushed into its step's vector and its group looked up there.
//!
//! The answer is exactly the per-step aggregation's: the same accumulator arithmetic
//! ([`add`], [`finish`]), points added in the same order (series order within a step),
//! and within each step the groups in the order the per-step walk meets them (by their
//! first series with a value at that step). When every group's first series is the same
//! at all its steps (steady data), that order is one order of the groups and the result
//! stays series by series, so a binary operator over it can match once per series
//! (`binary::by_series`); otherwise it is given as per-step vectors.

use promql_parser::parser::token::{T_AVG, T_COUNT, T_GROUP, T_MAX, T_MIN, T_STDDEV, T_STDVAR, T_SUM};

use super::super::engine::{Deadline, Evaluator};
use super::super::error::PromqlError;
use super::super::value::{Elem, SeriesVec, StepSeries, StepVec, Val};
use super::acc::{add, finish, first_acc, Acc, Grouping};

/// Fewest accumulator cells allowed whatever the input's size.
const MIN_CELL_BUDGET: usize = 1 << 16;

/// What [`aggregate`] did.
pub(super) enum BySeries {
    /// The aggregation: series by series, or per-step vectors (see the module
    /// documentation).
    Done(Val),
    /// Not done here (another operator, histograms, labels shared between series, or more
    /// cells than the input has points): the input, for the per-step walk.
    Declined(SeriesVec),
}

/// One group's state at one step; `acc.count` is 0 until a value arrives.
#[derive(Clone, Default)]
struct Cell {
    acc: Acc,
    /// Index of the first series that gave a value here: orders the groups of the step.
    first: usize,
}

/// Aggregates `input` with `op`, series by series or into per-step vectors, when the
/// operator and the input allow (see [`BySeries::Declined`]). The accumulators take one
/// cell per group and step from the first to the last step with data, bounded by the
/// number of points the input holds (at least [`MIN_CELL_BUDGET`]), so this never holds
/// much more than the input itself.
pub(super) fn aggregate(
    ev: &mut Evaluator<'_>,
    op: u16,
    grouping: &mut Grouping<'_>,
    input: SeriesVec,
) -> Result<BySeries, PromqlError> {
    let simple = matches!(
        op,
        T_SUM | T_AVG | T_COUNT | T_MIN | T_MAX | T_GROUP | T_STDDEV | T_STDVAR
    );
    if !simple || input.collided || input.has_histograms() {
        return Ok(BySeries::Declined(input));
    }
    let mut gids: Vec<usize> = Vec::with_capacity(input.series.len());
    for s in &input.series {
        gids.push(grouping.id(&s.labels));
    }
    let steps = input.steps;
    let groups = grouping.groups.len();
    // Rows cover only the steps some series has a value at (a range reaching past the data,
    // as a 6 h dashboard over 2 h of it, would otherwise pay for cells never filled).
    let (first_step, width) = step_span(&input);
    let budget = input.points().max(MIN_CELL_BUDGET);
    let Some(cells_needed) = groups.checked_mul(width).filter(|&c| c <= budget) else {
        return Ok(BySeries::Declined(input));
    };
    let mut cells: Vec<Cell> = vec![Cell::default(); cells_needed];
    let rows = Rows {
        input: &input,
        gids: &gids,
        width,
        first_step,
    };
    rows.fill(ev, op, &mut cells)?;
    if let Some(order) = steady_order(&cells, groups, width) {
        let mut out: Vec<StepSeries> = Vec::with_capacity(order.len());
        for gid in order {
            let (Some(row), Some(labels)) = (
                cells.get(gid * width..(gid + 1) * width),
                grouping.groups.get(gid),
            ) else {
                continue;
            };
            let mut series = StepSeries::new(labels.clone());
            for (offset, cell) in row.iter().enumerate() {
                if cell.acc.count > 0.0 {
                    series.steps.push(first_step + offset as u32);
                    series.values.push(finish(op, &cell.acc));
                }
            }
            out.push(series);
        }
        return Ok(BySeries::Done(Val::Series(SeriesVec {
            series: out,
            steps,
            collided: false,
        })));
    }
    let mut out: Vec<StepVec> = Vec::with_capacity(steps);
    let mut present: Vec<(usize, usize)> = Vec::new();
    for step in 0..steps {
        present.clear();
        // Steps outside the span hold nothing (an offset past the span finds no cell).
        let offset = step.wrapping_sub(first_step as usize);
        if offset < width {
            for gid in 0..groups {
                if let Some(cell) = cells.get(gid * width + offset) {
                    if cell.acc.count > 0.0 {
                        present.push((cell.first, gid));
                    }
                }
            }
        }
        present.sort_unstable();
        let mut res: StepVec = Vec::with_capacity(present.len());
        for &(_, gid) in &present {
            let (Some(cell), Some(labels)) = (cells.get(gid * width + offset), grouping.groups.get(gid))
            else {
                continue;
            };
            res.push(Elem::float(labels.clone(), finish(op, &cell.acc)));
        }
        out.push(res);
    }
    Ok(BySeries::Done(Val::Vector(out)))
}

/// Fewest points worth accumulating on several threads: below, starting them costs more
/// than it saves.
const MIN_PARALLEL_POINTS: usize = 200_000;

/// The input of the accumulation: every series with its group, and the steps a row of
/// cells covers (`width` from `first_step`).
struct Rows<'a> {
    input: &'a SeriesVec,
    gids: &'a [usize],
    width: usize,
    first_step: u32,
}

impl Rows<'_> {
    /// Adds every series' values into its group's row of `cells`. Groups are independent,
    /// so large inputs are split by group over [`Evaluator::workers`] threads, each going
    /// through all series and taking those of its groups: every cell still gets its values
    /// in series order, so the sums are those of one thread, bit for bit.
    fn fill(&self, ev: &Evaluator<'_>, op: u16, cells: &mut [Cell]) -> Result<(), PromqlError> {
        if self.width == 0 || cells.is_empty() {
            return Ok(());
        }
        let groups = cells.len() / self.width;
        let workers = if self.input.points() < MIN_PARALLEL_POINTS {
            1
        } else {
            ev.workers().min(groups).max(1)
        };
        let groups_per_worker = groups.div_ceil(workers);
        let deadline = ev.deadline();
        let mut results: Vec<Result<(), PromqlError>> = Vec::with_capacity(workers);
        std::thread::scope(|scope| {
            let mut parts = cells.chunks_mut(groups_per_worker * self.width).enumerate();
            // The first part on this thread, the others on theirs.
            let first = parts.next();
            let mut handles = Vec::new();
            for (k, part) in parts {
                let first_gid = k * groups_per_worker;
                handles.push(scope.spawn(move || self.fill_groups(op, part, first_gid, deadline)));
            }
            if let Some((_, part)) = first {
                results.push(self.fill_groups(op, part, 0, deadline));
            }
            for h in handles {
                results.push(
                    h.join()
                        .unwrap_or_else(|_| Err(PromqlError::exec("an aggregation's worker thread failed"))),
                );
            }
        });
        results.into_iter().collect()
    }

    /// Adds the values of the series in groups `first_gid..` into `rows`, those groups'
    /// rows of cells.
    fn fill_groups(
        &self,
        op: u16,
        rows: &mut [Cell],
        first_gid: usize,
        deadline: Deadline<'_>,
    ) -> Result<(), PromqlError> {
        let groups = rows.len() / self.width;
        for (si, (s, &gid)) in self.input.series.iter().zip(self.gids).enumerate() {
            if si % 256 == 0 {
                deadline.check()?;
            }
            let Some(local) = gid.checked_sub(first_gid).filter(|&g| g < groups) else {
                continue;
            };
            let Some(row) = rows.get_mut(local * self.width..(local + 1) * self.width) else {
                continue;
            };
            for (&step, &v) in s.steps.iter().zip(&s.values) {
                let Some(cell) = row.get_mut(step.wrapping_sub(self.first_step) as usize) else {
                    continue;
                };
                if cell.acc.count == 0.0 {
                    cell.acc = first_acc(v, 0, false);
                    cell.first = si;
                } else {
                    add(op, &mut cell.acc, v, 0, false);
                }
            }
        }
        Ok(())
    }
}

/// The first step any series has a value at and the number of steps from it to the last
/// such step (0 and 0 when there is none).
fn step_span(input: &SeriesVec) -> (u32, usize) {
    let mut first = u32::MAX;
    let mut last = 0u32;
    for s in &input.series {
        if let (Some(&a), Some(&b)) = (s.steps.first(), s.steps.last()) {
            first = first.min(a);
            last = last.max(b);
        }
    }
    if first > last {
        return (0, 0);
    }
    (first, (last - first) as usize + 1)
}

/// The groups with a value, ordered by their first series, when each group's first series
/// is the same at every step it has a value: the per-step walk's order at each step is then
/// this order. `None` otherwise.
fn steady_order(cells: &[Cell], groups: usize, width: usize) -> Option<Vec<usize>> {
    let mut firsts: Vec<(usize, usize)> = Vec::with_capacity(groups);
    for gid in 0..groups {
        let row = cells.get(gid * width..(gid + 1) * width)?;
        let mut first: Option<usize> = None;
        for cell in row {
            if cell.acc.count > 0.0 {
                match first {
                    None => first = Some(cell.first),
                    Some(f) if f != cell.first => return None,
                    Some(_) => {}
                }
            }
        }
        if let Some(f) = first {
            firsts.push((f, gid));
        }
    }
    firsts.sort_unstable();
    Some(firsts.into_iter().map(|(_, gid)| gid).collect())
}
