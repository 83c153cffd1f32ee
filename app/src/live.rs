//! Live updates: a signal that changes whenever the server says a cluster's state changed
//! (server-sent events from `/live/{cluster}`, which tell of runs too), or a run did
//! (`/live-runs`). Resources that read it reload their data.
//! On the server, and before hydration, it never changes. After a lost connection the browser
//! reconnects by itself, and the first event after a reconnect reloads current state.

use leptos::prelude::*;

/// Whether the event stream is connected (for the "live" badge).
// Only the browser connects; the server renders `Connecting`.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStatus {
    Connecting,
    Live,
    Reconnecting,
}

/// The runs' counter of a cluster page's stream (its `runs` events: any workflow run changed),
/// for what the page shows of runs (the cluster's run in progress). Provided by [`use_live`].
#[derive(Debug, Clone, Copy)]
pub struct RunsTick(pub ReadSignal<u64>);

/// A counter bumped at each change event of `cluster`, and the connection's status. The same
/// stream tells of runs: their counter is provided to the page as [`RunsTick`].
pub fn use_live(cluster: Signal<String>) -> (ReadSignal<u64>, ReadSignal<LiveStatus>) {
    let (runs, set_runs) = signal(0u64);
    provide_context(RunsTick(runs));
    use_live_url(
        Signal::derive(move || {
            let name = cluster.get();
            if name.is_empty() {
                String::new()
            } else {
                format!("/live/{name}")
            }
        }),
        Some(set_runs),
    )
}

/// The runs' counter for a part of a page: the page's own stream's when it has one (a
/// cluster's page: a browser holds few connections to one server), else `/live-runs`.
pub fn runs_tick() -> ReadSignal<u64> {
    match use_context::<RunsTick>() {
        Some(RunsTick(tick)) => tick,
        None => use_live_runs().0,
    }
}

/// A counter bumped at each change of any workflow run (`/live-runs`).
pub fn use_live_runs() -> (ReadSignal<u64>, ReadSignal<LiveStatus>) {
    use_live_url(Signal::derive(|| "/live-runs".to_owned()), None)
}

fn use_live_url(
    url: Signal<String>,
    runs: Option<WriteSignal<u64>>,
) -> (ReadSignal<u64>, ReadSignal<LiveStatus>) {
    let (tick, set_tick) = signal(0u64);
    let (status, set_status) = signal(LiveStatus::Connecting);
    #[cfg(feature = "hydrate")]
    browser::connect(url, set_tick, runs, set_status);
    #[cfg(not(feature = "hydrate"))]
    let _ = (url, set_tick, runs, set_status);
    (tick, status)
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::EventSource;

    use super::LiveStatus;

    struct Connection {
        source: EventSource,
        // Kept alive as long as the EventSource uses them.
        _on_change: Closure<dyn FnMut(web_sys::MessageEvent)>,
        _on_runs: Option<Closure<dyn FnMut(web_sys::MessageEvent)>>,
        _on_open: Closure<dyn FnMut(web_sys::Event)>,
        _on_error: Closure<dyn FnMut(web_sys::Event)>,
    }

    impl Drop for Connection {
        fn drop(&mut self) {
            self.source.close();
        }
    }

    pub(super) fn connect(
        url: Signal<String>,
        set_tick: WriteSignal<u64>,
        set_runs: Option<WriteSignal<u64>>,
        set_status: WriteSignal<LiveStatus>,
    ) {
        Effect::new(move |previous: Option<Option<SendWrapper<Connection>>>| {
            drop(previous);
            let url = url.get();
            if url.is_empty() {
                return None;
            }
            let source = EventSource::new(&url).ok()?;
            let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
                set_tick.update(|t| *t += 1);
            });
            let _ = source
                .add_event_listener_with_callback("changed", on_change.as_ref().unchecked_ref());
            let on_runs = set_runs.map(|set_runs| {
                let on_runs = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
                    set_runs.update(|t| *t += 1);
                });
                let _ = source
                    .add_event_listener_with_callback("runs", on_runs.as_ref().unchecked_ref());
                on_runs
            });
            // A (re)connection reloads the runs too: the first event tells of the state only.
            let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                set_status.set(LiveStatus::Live);
                if let Some(set_runs) = set_runs {
                    set_runs.update(|t| *t += 1);
                }
            });
            source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
            let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                set_status.set(LiveStatus::Reconnecting);
            });
            source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            Some(SendWrapper::new(Connection {
                source,
                _on_change: on_change,
                _on_runs: on_runs,
                _on_open: on_open,
                _on_error: on_error,
            }))
        });
    }
}
