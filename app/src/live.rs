//! Live updates: a signal that changes whenever the server says a cluster's state changed
//! (server-sent events from `/live/{cluster}`). Resources that read it reload their data.
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

/// A counter bumped at each change event of `cluster`, and the connection's status.
pub fn use_live(cluster: Signal<String>) -> (ReadSignal<u64>, ReadSignal<LiveStatus>) {
    use_live_url(Signal::derive(move || {
        let name = cluster.get();
        if name.is_empty() {
            String::new()
        } else {
            format!("/live/{name}")
        }
    }))
}

/// A counter bumped at each change of any workflow run (`/live-runs`).
pub fn use_live_runs() -> (ReadSignal<u64>, ReadSignal<LiveStatus>) {
    use_live_url(Signal::derive(|| "/live-runs".to_owned()))
}

fn use_live_url(url: Signal<String>) -> (ReadSignal<u64>, ReadSignal<LiveStatus>) {
    let (tick, set_tick) = signal(0u64);
    let (status, set_status) = signal(LiveStatus::Connecting);
    #[cfg(feature = "hydrate")]
    browser::connect(url, set_tick, set_status);
    #[cfg(not(feature = "hydrate"))]
    let _ = (url, set_tick, set_status);
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
            let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                set_status.set(LiveStatus::Live)
            });
            source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
            let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                set_status.set(LiveStatus::Reconnecting);
            });
            source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            Some(SendWrapper::new(Connection {
                source,
                _on_change: on_change,
                _on_open: on_open,
                _on_error: on_error,
            }))
        });
    }
}
