//! The exhaustion forecast: the server samples each pool's use into SQLite (every
//! [`SAMPLE_EVERY`], kept [`KEEP_FOR`]); a line fitted to the last [`WINDOW`] of samples says
//! whether the pool grows and, at that rate, in how many days it is full.

use std::collections::BTreeMap;
use std::time::Duration;

use grappe_views::ipam::{PoolTrendView, Trend};

use crate::Engine;
use crate::store::StoreError;
use crate::store::ipam::IpamSample;

/// How often the server samples every cluster's pools.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(300);
/// How long samples are kept.
pub const KEEP_FOR: Duration = Duration::from_secs(90 * 86_400);
/// The samples a forecast is fitted to.
pub const WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// The fewest samples, and the shortest span, a forecast is made from.
const MIN_SAMPLES: usize = 3;
const MIN_SPAN_SECONDS: i64 = 1_800;
/// Below this growth (addresses per day) a pool is "not growing".
const MIN_GROWTH_PER_DAY: f64 = 0.5;
/// The most points a plot gets.
const PLOT_POINTS: usize = 240;

/// Where a pool of `size` addresses goes, from its samples (time, allocated), oldest first.
#[must_use]
pub fn forecast(samples: &[(i64, u64)], size: u64) -> Trend {
    let Some(&(last_at, last)) = samples.last() else {
        return Trend::Collecting { samples: 0 };
    };
    if size > 0 && last >= size {
        return Trend::Full;
    }
    let span = last_at - samples[0].0;
    if samples.len() < MIN_SAMPLES || span < MIN_SPAN_SECONDS {
        return Trend::Collecting {
            samples: samples.len(),
        };
    }
    // Least squares over (t - t0, allocated).
    let n = samples.len() as f64;
    let t0 = samples[0].0;
    let (mut st, mut sy, mut stt, mut sty) = (0.0, 0.0, 0.0, 0.0);
    for &(at, allocated) in samples {
        let (t, y) = ((at - t0) as f64, allocated as f64);
        st += t;
        sy += y;
        stt += t * t;
        sty += t * y;
    }
    let denominator = n * stt - st * st;
    if denominator <= 0.0 {
        return Trend::NotGrowing;
    }
    let per_day = (n * sty - st * sy) / denominator * 86_400.0;
    if per_day < MIN_GROWTH_PER_DAY {
        return Trend::NotGrowing;
    }
    let days = ((size - last) as f64 / per_day).ceil();
    Trend::FullIn {
        days: if days > f64::from(u32::MAX) {
            u32::MAX
        } else {
            days as u32
        },
    }
}

/// At most [`PLOT_POINTS`] of `points`, evenly spread, the last one kept.
fn thin(points: Vec<(i64, u64)>) -> Vec<(i64, u64)> {
    if points.len() <= PLOT_POINTS {
        return points;
    }
    let step = points.len().div_ceil(PLOT_POINTS);
    let last = points.last().copied();
    let mut out: Vec<(i64, u64)> = points.into_iter().step_by(step).collect();
    if out.last().copied() != last
        && let Some(l) = last
    {
        out.push(l);
    }
    out
}

/// Each pool's trend from `samples` (oldest first).
#[must_use]
pub fn trends(samples: Vec<IpamSample>) -> Vec<PoolTrendView> {
    let mut by_pool: BTreeMap<String, (u64, Vec<(i64, u64)>)> = BTreeMap::new();
    for s in samples {
        let size = u64::try_from(s.size).unwrap_or(0);
        let entry = by_pool.entry(s.pool).or_default();
        entry.0 = size;
        entry
            .1
            .push((s.at, u64::try_from(s.allocated).unwrap_or(0)));
    }
    by_pool
        .into_iter()
        .map(|(pool, (size, points))| PoolTrendView {
            trend: forecast(&points, size),
            points: thin(points),
            pool,
            size,
        })
        .collect()
}

impl Engine {
    /// Samples every synced cluster's pools now, and forgets samples past [`KEEP_FOR`].
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn sample_ipam(&self) -> Result<usize, StoreError> {
        self.sample_ipam_at(crate::time::now().unix_seconds()).await
    }

    /// [`Engine::sample_ipam`] at a given time (unix seconds).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn sample_ipam_at(&self, at: i64) -> Result<usize, StoreError> {
        let mut sampled = 0;
        for name in self.clusters.names() {
            let Some(state) = self.states.get(name) else {
                continue;
            };
            if !state.link().synced {
                continue;
            }
            let pools: Vec<(String, u64, u64)> = state
                .ipam()
                .pools
                .into_iter()
                .filter(|p| p.size > 0)
                .map(|p| (p.name, p.allocated, p.size))
                .collect();
            if pools.is_empty() {
                continue;
            }
            sampled += pools.len();
            self.store
                .insert_ipam_samples(name.as_str(), at, &pools)
                .await?;
        }
        let keep = i64::try_from(KEEP_FOR.as_secs()).unwrap_or(i64::MAX);
        self.store.prune_ipam_samples(at - keep).await?;
        Ok(sampled)
    }

    /// The trends of `cluster`'s pools over the last [`WINDOW`].
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn ipam_trends(&self, cluster: &str) -> Result<Vec<PoolTrendView>, StoreError> {
        let window = i64::try_from(WINDOW.as_secs()).unwrap_or(i64::MAX);
        let since = crate::time::now().unix_seconds() - window;
        Ok(trends(self.store.ipam_samples(cluster, since).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_growing_pool_is_full_in_days_and_a_flat_one_is_not_growing() {
        let hour = 3_600;
        // 10 addresses a day, 200 of 1000 allocated now: 80 days left.
        let growing: Vec<(i64, u64)> = (0..=48)
            .map(|h| (h * hour, 180 + (h as u64 * 10) / 24))
            .collect();
        match forecast(&growing, 1000) {
            Trend::FullIn { days } => assert!((79..=82).contains(&days), "{days}"),
            other => panic!("{other:?}"),
        }
        let flat: Vec<(i64, u64)> = (0..10).map(|h| (h * hour, 500)).collect();
        assert_eq!(forecast(&flat, 1000), Trend::NotGrowing);
        let shrinking: Vec<(i64, u64)> = (0..10).map(|h| (h * hour, 500 - h as u64)).collect();
        assert_eq!(forecast(&shrinking, 1000), Trend::NotGrowing);
        assert_eq!(
            forecast(&[(0, 1), (60, 2)], 1000),
            Trend::Collecting { samples: 2 }
        );
        assert_eq!(forecast(&[(0, 1), (7200, 1000)], 1000), Trend::Full);
        assert_eq!(forecast(&[], 1000), Trend::Collecting { samples: 0 });
    }

    #[test]
    fn a_plot_keeps_at_most_its_points_and_the_last_one() {
        let points: Vec<(i64, u64)> = (0..1000).map(|i| (i, i as u64)).collect();
        let thinned = thin(points);
        assert!(thinned.len() <= PLOT_POINTS + 1, "{}", thinned.len());
        assert_eq!(thinned.last(), Some(&(999, 999)));
        assert_eq!(thinned.first(), Some(&(0, 0)));
    }
}
