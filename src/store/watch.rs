//! The live copy of the Policy objects: a kube-rs watcher feeding a
//! reflector store, and the status writer.
//!
//! The reflector swaps in a complete list at the end of every (re)list, so
//! the reload path never builds from half a list. Until the first list has
//! completed the store is not synced, and `serve` neither answers nor
//! reports ready. When the apiserver cannot be reached later, the watcher
//! retries with backoff while the store keeps the objects it last saw, so
//! an outage never drops the last good set.
//!
//! Status writes happen on their own task, after reload attempts and on a
//! slow resync, paced to at most one every [`MIN_WRITE_INTERVAL`], and only
//! for objects whose status says something else: never on the request path.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, store::Writer, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use tokio::sync::{watch as chan, Notify};

use super::status::{self, LastLoad, OwnCheck};
use super::{object_name, PolicyObject, GROUP, KIND, PLURAL, VERSION};
use crate::policy::{Diagnostic, PolicyFile, SchemaBundle};

/// Least time between two status writes.
pub const MIN_WRITE_INTERVAL: Duration = Duration::from_millis(100);
/// Statuses are compared with the wanted ones this often even without a
/// reload, so a failed write is retried.
const STATUS_RESYNC: Duration = Duration::from_secs(30);

/// Why the object store could not start.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The kubeconfig (or in-cluster configuration) does not load.
    #[error("--kubeconfig {path}: {message}")]
    Config { path: String, message: String },
}

/// The resource the store watches.
pub fn api_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.into(),
        plural: PLURAL.into(),
    }
}

/// A client from `kubeconfig`, or with none, the in-cluster configuration
/// (then `$KUBECONFIG` or `~/.kube/config`).
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, StoreError> {
    let err = |message: String| StoreError::Config {
        path: kubeconfig.map_or_else(
            || "(in-cluster or default)".to_owned(),
            |p| p.display().to_string(),
        ),
        message,
    };
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| err(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| err(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| err(e.to_string()))
}

/// The live copy of the Policy objects. Cheap to clone: every clone is the
/// same store.
#[derive(Clone)]
pub struct ObjectStore {
    inner: Arc<Inner>,
}

struct Inner {
    reader: Store<DynamicObject>,
    /// Set once the first complete list is in `reader`; never cleared, as
    /// later relists swap in whole.
    synced: AtomicBool,
    /// Bumped whenever `reader` changes; the reload loop waits on it.
    changes: chan::Sender<u64>,
    /// What the last load left, for the status writer; written by the
    /// reload path, read by the writer, both off the request path.
    last: Mutex<LastLoad>,
    /// Wakes the status writer after a reload attempt.
    attempted: Notify,
}

impl ObjectStore {
    /// Starts watching Policy objects with `client`; with `write_status`,
    /// also the status writer. Both tasks end when `shutdown` fires.
    pub fn spawn(
        client: kube::Client,
        schema: Arc<SchemaBundle>,
        write_status: bool,
        shutdown: chan::Receiver<bool>,
    ) -> (ObjectStore, tokio::task::JoinHandle<()>) {
        let resource = api_resource();
        let api: Api<DynamicObject> = Api::all_with(client, &resource);
        let writer = Writer::new(resource);
        let (changes, _) = chan::channel(0);
        let store = ObjectStore {
            inner: Arc::new(Inner {
                reader: writer.as_reader(),
                synced: AtomicBool::new(false),
                changes,
                last: Mutex::new(LastLoad::default()),
                attempted: Notify::new(),
            }),
        };
        let watching = tokio::spawn(watch_objects(
            store.clone(),
            api.clone(),
            writer,
            shutdown.clone(),
        ));
        let writing = write_status
            .then(|| tokio::spawn(write_statuses(store.clone(), api, schema, shutdown)));
        let task = tokio::spawn(async move {
            let _ = watching.await;
            if let Some(w) = writing {
                let _ = w.await;
            }
        });
        (store, task)
    }

    /// True once the first complete list of objects has arrived.
    pub fn is_synced(&self) -> bool {
        self.inner.synced.load(Ordering::SeqCst)
    }

    /// A receiver that sees every change to the objects.
    pub fn subscribe(&self) -> chan::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// The objects as last seen.
    pub fn objects(&self) -> Vec<PolicyObject> {
        self.inner
            .reader
            .state()
            .iter()
            .map(|o| policy_object(o))
            .collect()
    }

    /// Records a reload attempt: `Some(Ok(files))` the set built from these
    /// sources was installed, `Some(Err(d))` the load failed with these
    /// diagnostics, `None` nothing changed. Wakes the status writer.
    pub fn record(&self, attempt: Option<Result<&[PolicyFile], &[Diagnostic]>>) {
        {
            let mut last = self.inner.last.lock().unwrap_or_else(|e| e.into_inner());
            match attempt {
                Some(Ok(files)) => {
                    *last = LastLoad {
                        served: files
                            .iter()
                            .filter_map(|f| {
                                object_name(&f.relative)
                                    .map(|n| (n.to_owned(), Arc::clone(&f.text)))
                            })
                            .collect(),
                        failure: None,
                    }
                }
                Some(Err(diags)) => last.failure = Some(diags.to_vec()),
                None => {}
            }
        }
        self.inner.attempted.notify_one();
    }

    fn last_load(&self) -> LastLoad {
        self.inner
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What the store keeps of an object.
fn policy_object(o: &DynamicObject) -> PolicyObject {
    PolicyObject {
        name: o.name_any(),
        generation: o.metadata.generation.unwrap_or(0),
        content: o
            .data
            .get("spec")
            .and_then(|s| s.get("content"))
            .and_then(|c| c.as_str())
            .map(str::to_owned),
    }
}

async fn watch_objects(
    store: ObjectStore,
    api: Api<DynamicObject>,
    writer: Writer<DynamicObject>,
    mut shutdown: chan::Receiver<bool>,
) {
    // What the store holds per object is bounded by the CRD (maxLength of
    // spec.content); managedFields and the last-applied annotation (a second
    // copy of the content) are dropped on arrival.
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o: &mut DynamicObject| {
            o.metadata.managed_fields = None;
            if let Some(a) = o.metadata.annotations.as_mut() {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        });
    let mut stream = std::pin::pin!(reflector::reflector(writer, stream));
    let mut errors_in_a_row = 0u32;
    loop {
        let event = tokio::select! {
            _ = shutdown.changed() => return,
            e = stream.next() => e,
        };
        match event {
            None => return,
            Some(Ok(event)) => {
                errors_in_a_row = 0;
                let changed = match event {
                    watcher::Event::InitDone => {
                        if !store.inner.synced.swap(true, Ordering::SeqCst) {
                            tracing::info!(
                                objects = store.inner.reader.len(),
                                "Policy objects listed"
                            );
                        }
                        true
                    }
                    watcher::Event::Apply(_) | watcher::Event::Delete(_) => true,
                    // The reflector swaps in a relist only at InitDone.
                    watcher::Event::Init | watcher::Event::InitApply(_) => false,
                };
                if changed {
                    store.inner.changes.send_modify(|n| *n += 1);
                }
            }
            Some(Err(e)) => {
                errors_in_a_row += 1;
                // The watcher backs off between attempts; say so once per
                // outage at warn, then at debug.
                if errors_in_a_row == 1 {
                    tracing::warn!(error = %e, synced = store.is_synced(), "watching Policy objects failed; retrying with backoff, the last good set keeps serving");
                } else {
                    tracing::debug!(error = %e, "watching Policy objects failed again");
                }
            }
        }
    }
}

async fn write_statuses(
    store: ObjectStore,
    api: Api<DynamicObject>,
    schema: Arc<SchemaBundle>,
    mut shutdown: chan::Receiver<bool>,
) {
    let mut resync = tokio::time::interval(STATUS_RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Each object's own check, by name, for the text it was made for:
    // objects rarely change, and compiling is the costly part.
    let mut checks: Arc<HashMap<String, (Arc<str>, OwnCheck)>> = Arc::default();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = store.inner.attempted.notified() => {}
            _ = resync.tick() => {}
        }
        if !store.is_synced() {
            continue;
        }
        let objects = store.inner.reader.state();
        let last = store.last_load();
        let work = {
            let (schema, previous, objects) =
                (Arc::clone(&schema), Arc::clone(&checks), objects.clone());
            move || wanted(&objects, &last, &schema, &previous)
        };
        let Ok((wanted, fresh)) = tokio::task::spawn_blocking(work).await else {
            tracing::error!("checking Policy objects panicked; status not written");
            continue;
        };
        checks = Arc::new(fresh);
        let now = now_rfc3339();
        for (object, desired) in wanted {
            let name = object.name_any();
            let current = object.data.get("status");
            let body = status::patch(current, &desired, &now);
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(_) => tracing::info!(
                    policy = %name,
                    ready = desired.ready,
                    reason = desired.reason,
                    message = %desired.message,
                    "Policy status written"
                ),
                Err(e) => {
                    tracing::warn!(policy = %name, error = %e, "writing Policy status failed; retrying later")
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(MIN_WRITE_INTERVAL) => {}
            }
        }
    }
}

type Checks = HashMap<String, (Arc<str>, OwnCheck)>;

/// The objects whose status should change, with what it should say, and
/// the own checks of every current object (reused from `previous` where
/// the text is unchanged).
fn wanted(
    objects: &[Arc<DynamicObject>],
    last: &LastLoad,
    schema: &SchemaBundle,
    previous: &Checks,
) -> (Vec<(Arc<DynamicObject>, status::Desired)>, Checks) {
    let mut fresh = Checks::with_capacity(objects.len());
    let mut out = Vec::new();
    for o in objects {
        let object = policy_object(o);
        let text: Arc<str> = object.content.clone().unwrap_or_default().into();
        let own = match previous.get(&object.name) {
            Some((t, check)) if *t == text && object.content.is_some() => check.clone(),
            _ => status::check_alone(&object, schema),
        };
        let desired = status::desired(&object, &own, last);
        if !status::is_current(o.data.get("status"), &desired) {
            out.push((Arc::clone(o), desired));
        }
        fresh.insert(object.name, (text, own));
    }
    (out, fresh)
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}
