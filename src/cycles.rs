//! Small graph algorithms over nodes `0..n` with edges given by a
//! function: used for runs, task calls and vars alike.

/// A cycle in the graph with `n` nodes and edges `next(i)`, as the list of
/// nodes on it (the first node repeats implicitly), found by iterative DFS.
pub fn find_cycle(n: usize, next: impl Fn(usize) -> Vec<usize>) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; n];
    for start in 0..n {
        if mark[start] != Mark::New {
            continue;
        }
        let mut path: Vec<(usize, Vec<usize>, usize)> = vec![(start, next(start), 0)];
        mark[start] = Mark::Open;
        while let Some((node, edges, pos)) = path.last_mut() {
            if *pos < edges.len() {
                let to = edges[*pos];
                *pos += 1;
                match mark[to] {
                    Mark::Open => {
                        let from = path.iter().position(|(n, _, _)| *n == to).unwrap_or(0);
                        return Some(path[from..].iter().map(|(n, _, _)| *n).collect());
                    }
                    Mark::New => {
                        mark[to] = Mark::Open;
                        let edges = next(to);
                        path.push((to, edges, 0));
                    }
                    Mark::Done => {}
                }
            } else {
                mark[*node] = Mark::Done;
                path.pop();
            }
        }
    }
    None
}

/// The longest path in the graph with `n` nodes and edges `next(i)`, as
/// its nodes in order; found without recursion, so that a chain of any
/// length costs no stack. Exact for an acyclic graph; in one with cycles,
/// a path that visits no node twice.
pub fn longest_chain(n: usize, next: impl Fn(usize) -> Vec<usize>) -> Vec<usize> {
    // `depth[i]`: nodes on the longest path starting at i; `best[i]` the
    // node after i on it.
    let mut depth = vec![0usize; n];
    let mut best: Vec<Option<usize>> = vec![None; n];
    let mut open = vec![false; n];
    for start in 0..n {
        if depth[start] != 0 {
            continue;
        }
        open[start] = true;
        let mut stack: Vec<(usize, Vec<usize>, usize)> = vec![(start, next(start), 0)];
        while let Some((node, edges, pos)) = stack.last_mut() {
            if *pos < edges.len() {
                let to = edges[*pos];
                *pos += 1;
                // A node on the stack is unfinished: only a cycle leads back
                // to one, and callers rule cycles out first.
                if depth[to] == 0 && !open[to] {
                    open[to] = true;
                    let edges = next(to);
                    stack.push((to, edges, 0));
                }
            } else {
                let node = *node;
                // An edge back to an unfinished node closes a cycle: it
                // does not lengthen the chain (which must stay finite).
                let (length, after) = edges
                    .iter()
                    .filter(|&&e| !open[e])
                    .map(|&e| (depth[e], Some(e)))
                    .max_by_key(|(d, _)| *d)
                    .unwrap_or((0, None));
                depth[node] = length + 1;
                best[node] = after;
                open[node] = false;
                stack.pop();
            }
        }
    }
    let Some(mut node) = (0..n).max_by_key(|&i| depth[i]) else {
        return Vec::new();
    };
    let mut chain = vec![node];
    while let Some(after) = best[node] {
        chain.push(after);
        node = after;
    }
    chain
}

/// Whether `to` can be reached from `from` along one edge or more: the one
/// reachability walk, iterative, each node visited once.
pub fn reaches(n: usize, from: usize, to: usize, next: impl Fn(usize) -> Vec<usize>) -> bool {
    let mut seen = vec![false; n];
    let mut stack = vec![from];
    while let Some(node) = stack.pop() {
        for following in next(node) {
            if following == to {
                return true;
            }
            if !std::mem::replace(&mut seen[following], true) {
                stack.push(following);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{find_cycle, longest_chain, reaches};

    #[test]
    fn reaches_along_one_edge_or_more() {
        let edges = [vec![1], vec![2], vec![], vec![3]];
        assert!(reaches(4, 0, 2, |i| edges[i].clone()));
        assert!(!reaches(4, 2, 0, |i| edges[i].clone()));
        assert!(!reaches(4, 0, 0, |i| edges[i].clone()));
        assert!(reaches(4, 3, 3, |i| edges[i].clone()));
    }

    #[test]
    fn finds_a_cycle_and_its_path() {
        let edges = [vec![1], vec![2], vec![0], vec![]];
        assert_eq!(find_cycle(4, |i| edges[i].clone()), Some(vec![0, 1, 2]));
        let self_loop = [vec![], vec![1]];
        assert_eq!(find_cycle(2, |i| self_loop[i].clone()), Some(vec![1]));
    }

    #[test]
    fn longest_chain_follows_the_deepest_path() {
        let edges = [vec![1, 2], vec![3], vec![], vec![4], vec![]];
        assert_eq!(longest_chain(5, |i| edges[i].clone()), vec![0, 1, 3, 4]);
        assert_eq!(longest_chain(0, |_| Vec::new()), Vec::<usize>::new());
        let cycle = [vec![1], vec![0, 1]];
        assert_eq!(longest_chain(2, |i| cycle[i].clone()), vec![0, 1]);
        let n = 100_000;
        assert_eq!(
            longest_chain(n, |i| if i + 1 < n { vec![i + 1] } else { vec![] }).len(),
            n
        );
    }

    #[test]
    fn a_diamond_is_no_cycle() {
        let edges = [vec![1, 2], vec![3], vec![3], vec![]];
        assert_eq!(find_cycle(4, |i| edges[i].clone()), None);
    }
}
