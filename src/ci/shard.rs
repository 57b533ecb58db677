//! Splitting a selection over a CI job matrix: `--shard INDEX/COUNT` keeps one share.
//!
//! Every job computes the same assignment from the same inputs (the selected names and, with
//! `--balance-from`, the durations of an earlier report), so each connector lands in exactly
//! one shard. The assignment is greedy longest-first (LPT scheduling): connectors by
//! decreasing duration, ties by name, each to the shard with the least total so far (ties to
//! the lowest index). Without durations every connector weighs the same, which balances by
//! count. A connector the report does not know weighs the mean of those it does.

use std::collections::BTreeMap;
use std::str::FromStr;

/// One share of a selection split `count` ways; `index` is 1-based, as in `--shard 1/4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`--shard {text}`: {reason}; expected INDEX/COUNT with 1 <= INDEX <= COUNT, e.g. 2/4")]
pub struct ShardParseError {
    text: String,
    reason: &'static str,
}

impl FromStr for Shard {
    type Err = ShardParseError;

    fn from_str(text: &str) -> Result<Shard, ShardParseError> {
        let err = |reason| ShardParseError {
            text: text.to_string(),
            reason,
        };
        let (index, count) = text.split_once('/').ok_or_else(|| err("no `/`"))?;
        let number = |s: &str| s.trim().parse::<usize>().map_err(|_| err("not a number"));
        let (index, count) = (number(index)?, number(count)?);
        if count == 0 {
            return Err(err("COUNT must be at least 1"));
        }
        if index == 0 || index > count {
            return Err(err("INDEX is out of range"));
        }
        Ok(Shard { index, count })
    }
}

/// For each of `names`, the 0-based shard it belongs to among `count`, weighted by
/// `durations` (seconds per connector name) when given.
pub fn assign(names: &[&str], count: usize, durations: &BTreeMap<String, f64>) -> Vec<usize> {
    let count = count.max(1);
    let known: Vec<f64> = names
        .iter()
        .filter_map(|n| durations.get(*n).copied())
        .filter(|d| d.is_finite() && *d >= 0.0)
        .collect();
    let default = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    let weight = |name: &str| {
        durations
            .get(name)
            .copied()
            .filter(|d| d.is_finite() && *d >= 0.0)
            .unwrap_or(default)
    };
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| {
        weight(names[b])
            .total_cmp(&weight(names[a]))
            .then_with(|| names[a].cmp(names[b]))
            .then_with(|| a.cmp(&b))
    });
    let mut load = vec![0.0_f64; count];
    // Ties on load go to the shard with fewer connectors, so connectors that took no time
    // (all from cache) still spread out.
    let mut members = vec![0_usize; count];
    let mut shard_of = vec![0; names.len()];
    for i in order {
        let lightest = (0..count)
            .min_by(|&a, &b| {
                load[a]
                    .total_cmp(&load[b])
                    .then_with(|| members[a].cmp(&members[b]))
                    .then_with(|| a.cmp(&b))
            })
            .unwrap_or(0);
        load[lightest] += weight(names[i]);
        members[lightest] += 1;
        shard_of[i] = lightest;
    }
    shard_of
}

/// The items of `shard`, in their order; `name` gives an item's connector name.
pub fn select<T>(
    items: Vec<T>,
    name: impl Fn(&T) -> &str,
    shard: Shard,
    durations: &BTreeMap<String, f64>,
) -> Vec<T> {
    let names: Vec<&str> = items.iter().map(&name).collect();
    let assigned = assign(&names, shard.count, durations);
    items
        .into_iter()
        .zip(assigned)
        .filter(|(_, s)| *s == shard.index - 1)
        .map(|(item, _)| item)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("source-{i:03}")).collect()
    }

    fn shards_of(
        all: &[String],
        count: usize,
        durations: &BTreeMap<String, f64>,
    ) -> Vec<Vec<String>> {
        (1..=count)
            .map(|index| {
                select(
                    all.to_vec(),
                    |s| s.as_str(),
                    Shard { index, count },
                    durations,
                )
            })
            .collect()
    }

    #[test]
    fn parses_index_over_count() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "1-4", "a/4", "2/"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(
            "5/4".parse::<Shard>().unwrap_err().to_string(),
            "`--shard 5/4`: INDEX is out of range; expected INDEX/COUNT with 1 <= INDEX <= COUNT, e.g. 2/4"
        );
    }

    #[test]
    fn every_connector_is_in_exactly_one_shard() {
        let all = names(23);
        for count in 1..=7 {
            let shards = shards_of(&all, count, &BTreeMap::new());
            let mut seen: Vec<String> = shards.concat();
            seen.sort();
            assert_eq!(seen, all, "count {count}");
        }
    }

    #[test]
    fn by_count_the_shards_differ_by_at_most_one() {
        let all = names(23);
        let sizes: Vec<usize> = shards_of(&all, 4, &BTreeMap::new())
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [6, 6, 6, 5]);
    }

    #[test]
    fn stable_whatever_the_order_the_selection_comes_in() {
        let all = names(23);
        let mut reversed = all.clone();
        reversed.reverse();
        let durations: BTreeMap<String, f64> = all
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), (i * 7 % 11) as f64))
            .collect();
        for d in [BTreeMap::new(), durations] {
            let mut a = shards_of(&all, 3, &d);
            let mut b = shards_of(&reversed, 3, &d);
            for s in a.iter_mut().chain(b.iter_mut()) {
                s.sort();
            }
            assert_eq!(a, b);
        }
    }

    #[test]
    fn connectors_that_took_no_time_still_spread() {
        let all = names(8);
        let zero: BTreeMap<String, f64> = all.iter().map(|n| (n.clone(), 0.0)).collect();
        let sizes: Vec<usize> = shards_of(&all, 4, &zero).iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 2, 2]);
    }

    #[test]
    fn durations_balance_the_shards_longest_first() {
        let durations: BTreeMap<String, f64> = [
            ("source-a", 100.0),
            ("source-b", 60.0),
            ("source-c", 50.0),
            ("source-d", 10.0),
            ("source-e", 10.0),
        ]
        .into_iter()
        .map(|(n, d)| (n.to_string(), d))
        .collect();
        let all: Vec<String> = durations.keys().cloned().collect();
        let shards = shards_of(&all, 2, &durations);
        // 100 | 60 + 50, then a 10 to the lighter side, the last to the side with fewer.
        assert_eq!(shards[0], ["source-a", "source-d", "source-e"]);
        assert_eq!(shards[1], ["source-b", "source-c"]);
        // An unknown connector weighs the mean of the known ones (46).
        let mut more = all.clone();
        more.push("source-new".into());
        let shards = shards_of(&more, 2, &durations);
        assert!(shards[0].contains(&"source-new".to_string()), "{shards:?}");
    }
}
