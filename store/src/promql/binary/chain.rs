//! Chains of binary operators evaluated on several threads.
//!
//! `a + b + c + d` parses as `((a + b) + c) + d`: its operands are independent of each
//! other, and evaluating them one after the other keeps a query on one core for its
//! selectors, aggregations and everything else that does not split its own work (a
//! dashboard panel adding up ten rates spent most of its time so). When at least two of a
//! chain's operands read storage, the operands are handed out in order to up to
//! [`Evaluator::workers`] threads, each evaluating with a fork of the evaluation
//! ([`Evaluator::fork`]), and the results are combined left to right on the caller's
//! thread, as one thread would.
//!
//! The answer is the same as one thread's, and so is what goes with it:
//!
//! - annotations are taken operand by operand and added, with the operators' own, in the
//!   order one thread would have found them;
//! - the error is the one one thread would have met first: once an operand fails no
//!   operand after it is handed out, and the fold returns the first failure in order
//!   (operands before a failed one were all handed out before it, so all were evaluated);
//! - samples count against the query's limit as one thread's would, only checked when the
//!   forks are absorbed (each fork is held to what the query had left when it started).
//!
//! A chain's own nodes are walked in a loop, not recursively, so evaluating a long chain
//! this way uses less stack than the recursion it replaces; each thread starts a fresh
//! stack of [`OPERAND_STACK_BYTES`], more than any operand's nesting (bounded by the depth
//! limit measured on a 2 MiB stack) needs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use promql_parser::parser::{BinaryExpr, Expr, MatrixSelector, SubqueryExpr, VectorSelector};

use super::super::annotations::Annotations;
use super::super::engine::{Evaluator, Spent};
use super::super::error::PromqlError;
use super::super::selectors::{walk, SelectorVisitor};
use super::super::value::{Grid, Val};
use super::operate::operate;

/// Stack of each thread an operand is evaluated on (virtual memory; what the evaluation
/// touches is what it costs).
const OPERAND_STACK_BYTES: usize = 4 << 20;

/// A chain of binary operators: its operands in query order and the operators between
/// them, innermost (leftmost) first: `operands[k + 1]` is the right-hand side of
/// `nodes[k]`, whose left-hand side is everything before it.
pub(super) struct Chain<'e> {
    nodes: Vec<&'e BinaryExpr>,
    operands: Vec<&'e Expr>,
}

impl<'e> Chain<'e> {
    /// The chain `be` is the top of, when evaluating its operands on several threads is
    /// worth it: the evaluation may use more than one and two or more operands read
    /// storage.
    pub(super) fn worth_splitting(ev: &Evaluator<'_>, be: &'e BinaryExpr) -> Option<Chain<'e>> {
        if ev.workers() < 2 {
            return None;
        }
        let mut nodes = vec![be];
        let mut rhs = vec![&*be.rhs];
        let mut left = &*be.lhs;
        while let Expr::Binary(inner) = left {
            nodes.push(inner);
            rhs.push(&*inner.rhs);
            left = &*inner.lhs;
        }
        nodes.reverse();
        let mut operands = vec![left];
        for r in rhs.into_iter().rev() {
            operands.push(r);
        }
        let mut reading = 0;
        for o in &operands {
            if reads_storage(o) {
                reading += 1;
            }
        }
        debug_assert_eq!(operands.len(), nodes.len() + 1);
        (reading >= 2).then_some(Chain { nodes, operands })
    }

    /// Evaluates the operands on up to [`Evaluator::workers`] threads and combines them
    /// left to right (see the module documentation).
    pub(super) fn eval(self, ev: &mut Evaluator<'_>, grid: &Grid) -> Result<Val, PromqlError> {
        let threads = ev.workers().min(self.operands.len());
        let per_thread = (ev.workers() / threads).max(1);
        let queue = Queue {
            operands: &self.operands,
            next: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
        };
        let mut worked: Vec<Worked> = Vec::with_capacity(threads);
        {
            let shared: &Evaluator<'_> = ev;
            std::thread::scope(|scope| {
                let mut handles = Vec::new();
                for _ in 1..threads {
                    let queue = &queue;
                    let spawned = std::thread::Builder::new()
                        .name("promql-operand".into())
                        .stack_size(OPERAND_STACK_BYTES)
                        .spawn_scoped(scope, move || queue.work(shared, per_thread, grid));
                    // A thread that cannot start leaves its operands to the others.
                    if let Ok(h) = spawned {
                        handles.push(h);
                    }
                }
                worked.push(queue.work(shared, per_thread, grid));
                for h in handles {
                    match h.join() {
                        Ok(w) => worked.push(w),
                        Err(_) => worked.push(Worked::failed()),
                    }
                }
            });
        }
        let mut results: Vec<Option<(Result<Val, PromqlError>, Annotations)>> = Vec::new();
        results.resize_with(self.operands.len(), || None);
        let mut spent = Vec::with_capacity(worked.len());
        for w in worked {
            for (k, val, notes) in w.done {
                if let Some(slot) = results.get_mut(k) {
                    *slot = Some((val, notes));
                }
            }
            spent.push(w.spent);
        }
        for s in spent.into_iter().flatten() {
            ev.absorb(s)?;
        }
        self.fold(ev, results)
    }

    /// Combines the evaluated operands left to right, adding each one's annotations before
    /// the operator that takes it.
    fn fold(
        self,
        ev: &mut Evaluator<'_>,
        results: Vec<Option<(Result<Val, PromqlError>, Annotations)>>,
    ) -> Result<Val, PromqlError> {
        let mut results = results.into_iter();
        let mut acc = next_operand(ev, results.next())?;
        for node in self.nodes {
            let rhs = next_operand(ev, results.next())?;
            acc = operate(ev, node, acc, rhs)?;
        }
        Ok(acc)
    }
}

/// An evaluated operand's value, its annotations added to the evaluation's.
fn next_operand(
    ev: &mut Evaluator<'_>,
    result: Option<Option<(Result<Val, PromqlError>, Annotations)>>,
) -> Result<Val, PromqlError> {
    let Some(Some((val, notes))) = result else {
        // Only operands after a failed one go unevaluated, and the fold stops at that one.
        return Err(PromqlError::exec(
            "an operand of a binary operator was not evaluated",
        ));
    };
    ev.annotations.merge(notes);
    val
}

/// The operands of one chain, handed out in order to the threads evaluating them.
struct Queue<'q, 'e> {
    operands: &'q [&'e Expr],
    next: AtomicUsize,
    /// Set when an operand failed: no operand after it is needed.
    failed: AtomicBool,
}

/// What one thread evaluated: each operand's index, value and annotations, and what its
/// fork spent (`None` when the thread failed, which its operands' missing values report).
struct Worked {
    done: Vec<(usize, Result<Val, PromqlError>, Annotations)>,
    spent: Option<Spent>,
}

impl Worked {
    fn failed() -> Worked {
        Worked {
            done: Vec::new(),
            spent: None,
        }
    }
}

impl Queue<'_, '_> {
    /// Evaluates operands with a fork of `ev` until none is left or one failed.
    fn work(&self, ev: &Evaluator<'_>, workers: usize, grid: &Grid) -> Worked {
        let mut fork = ev.fork(workers);
        let mut done = Vec::new();
        while !self.failed.load(Ordering::Acquire) {
            let k = self.next.fetch_add(1, Ordering::AcqRel);
            let Some(expr) = self.operands.get(k) else {
                break;
            };
            let val = fork.eval(expr, grid);
            if val.is_err() {
                self.failed.store(true, Ordering::Release);
            }
            done.push((k, val, std::mem::take(&mut fork.annotations)));
        }
        Worked {
            done,
            spent: Some(fork.spent()),
        }
    }
}

/// True when evaluating `expr` reads a selector's series.
fn reads_storage(expr: &Expr) -> bool {
    let mut finder = SelectorFinder { found: false };
    // The grid only matters to what a visitor does with it; this one ignores it.
    let grid = Grid {
        start: 0,
        end: 0,
        step: 1,
    };
    let walked = walk(expr, &grid, &mut finder);
    finder.found || walked.is_err()
}

/// A visitor noting whether there is any selector.
struct SelectorFinder {
    found: bool,
}

impl SelectorVisitor for SelectorFinder {
    fn vector(&mut self, _: &VectorSelector, _: &Grid) -> Result<(), PromqlError> {
        self.found = true;
        Ok(())
    }

    fn matrix(&mut self, _: &MatrixSelector, _: &Grid) -> Result<(), PromqlError> {
        self.found = true;
        Ok(())
    }

    fn info(&mut self, _: Option<&Expr>, _: &Grid) -> Result<(), PromqlError> {
        self.found = true;
        Ok(())
    }

    fn subquery_grid(&self, _: &SubqueryExpr, grid: &Grid) -> Result<Option<Grid>, PromqlError> {
        Ok(Some(*grid))
    }
}
