//! The translation layer: every piece of UI text is a [`Msg`], rendered in the reader's
//! [`Lang`]. The table is written with one macro so that a message cannot exist in one language
//! and not the other (the `match` would not compile).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Fr => "fr",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "en" => Some(Self::En),
            "fr" => Some(Self::Fr),
            _ => None,
        }
    }

    /// The language's own name, shown in the switcher.
    pub fn native_name(self) -> &'static str {
        match self {
            Self::En => "English",
            Self::Fr => "Français",
        }
    }
}

macro_rules! messages {
    ($name:ident { $($key:ident => $en:literal, $fr:literal;)* }) => {
        /// A UI message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($key),* }

        impl $name {
            /// Every message of the table.
            pub const ALL: &'static [Self] = &[$($name::$key),*];

            /// The message in `lang`.
            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $( ($name::$key, Lang::En) => $en, ($name::$key, Lang::Fr) => $fr, )*
                }
            }
        }

        impl $crate::i18n::Text for $name {
            fn in_lang(self, lang: Lang) -> &'static str {
                self.text(lang)
            }
        }
    };
}
use messages;

/// A message of any of the tables, for [`t`].
pub trait Text {
    fn in_lang(self, lang: Lang) -> &'static str;
}

mod net;
mod ui;
pub use net::Net;
pub use ui::Ui;

messages!(Msg {
    AppTagline => "Kubernetes cluster networking control room", "Salle de contrôle du réseau des grappes Kubernetes";
    NavOverview => "Overview", "Vue d'ensemble";
    NavNodes => "Nodes", "Nœuds";
    NavIpam => "IPAM", "IPAM";
    IpamDatastore => "Calico datastore", "Datastore de Calico";
    IpamReady => "ready", "prêt";
    IpamNotReady => "not ready (datastoreReady: false)", "pas prêt (datastoreReady: false)";
    IpamAllocations => "Allocations", "Allocations";
    IpamHandles => "Handles", "Handles";
    IpamTunnels => "Tunnel addresses", "Adresses de tunnel";
    IpamProblems => "Problems (as calicoctl ipam check counts them)", "Problèmes (comptés comme calicoctl ipam check)";
    IpamLeaked => "Allocated, used by no pod or node (leaked)", "Allouées, utilisées par aucun pod ni nœud (perdues)";
    IpamUnallocated => "Used by a pod in an active pool, allocated by no block", "Utilisées par un pod dans un pool actif, allouées par aucun bloc";
    IpamHandlesWithout => "Handles without allocations", "Handles sans allocation";
    IpamMissingHandles => "Allocations whose handle does not exist", "Allocations dont le handle n'existe pas";
    IpamBorrowed => "Borrowed from another node's block", "Empruntées au bloc d'un autre nœud";
    IpamBorrowedCount => "Borrowed", "Empruntées";
    IpamOrphans => "Blocks of deleted nodes", "Blocs de nœuds supprimés";
    IpamNodeGone => "deleted", "supprimé";
    IpamUse => "Allocated", "Allouées";
    IpamFree => "Free", "Libres";
    IpamBlock => "Block", "Bloc";
    IpamHandle => "Handle", "Handle";
    IpamNode => "Node", "Nœud";
    IpamWhy => "Why", "Pourquoi";
    IpamRelease => "Release leaked addresses", "Libérer les adresses perdues";
    IpamReleaseHint => "Plans the release of every leaked address allocated at least the grace period ago (each with its pod and why), then runs it after confirmation: each block is written with its resourceVersion, the handles are deleted, and the run can be rolled back.", "Planifie la libération de chaque adresse perdue allouée depuis au moins le délai de grâce (avec son pod et la raison), puis l'exécute après confirmation : chaque bloc est écrit avec sa resourceVersion, les handles sont supprimés, et l'exécution peut être annulée.";
    IpamGrace => "Grace period (s)", "Délai de grâce (s)";
    NavBgp => "BGP", "BGP";
    BgpNoCalico => "No Calico here: no BGP peering to show.", "Pas de Calico ici : aucun appairage BGP à montrer.";
    BgpMode => "Peering", "Appairage";
    BgpMesh => "node-to-node mesh (every node peers with every other)", "maillage entre nœuds (chaque nœud s'appaire à tous les autres)";
    BgpReflectors => "route reflectors (the mesh is off)", "réflecteurs de routes (maillage coupé)";
    BgpReflectorNodes => "Route reflectors", "Réflecteurs de routes";
    BgpDown => "Sessions not established", "Sessions non établies";
    BgpMatrix => "Sessions between nodes", "Sessions entre nœuds";
    BgpSessionDown => "not established (calico-node's readiness probe)", "non établie (sonde de calico-node)";
    BgpSessionUp => "no failure reported", "aucune panne signalée";
    BgpPeerNode => "Peer node", "Nœud pair";
    BgpSince => "Last said", "Dernier signalement";
    BgpTimes => "Times", "Fois";
    IpamTrend => "Trend (7 days)", "Tendance (7 jours)";
    TrendCollecting => "collecting ({samples} samples)", "en collecte ({samples} relevés)";
    TrendNotGrowing => "not growing", "ne croît pas";
    TrendFullIn => "at this rate, full in {days} days", "à ce rythme, plein dans {days} jours";
    TrendFull => "full", "plein";
    NavCni => "CNI", "CNI";
    NavHistory => "History", "Historique";
    NavSettings => "Settings", "Réglages";
    Cluster => "Cluster", "Grappe";
    Clusters => "Clusters", "Grappes";
    NoClusters => "No cluster is configured. Add one under [[clusters]] in grappe.toml or with GRAPPE_CLUSTERS.", "Aucune grappe n'est configurée. Ajoutez-en une sous [[clusters]] dans grappe.toml ou avec GRAPPE_CLUSTERS.";
    Reachable => "reachable", "joignable";
    Unreachable => "unreachable", "injoignable";
    ApiServer => "API server", "Serveur d'API";
    KubernetesVersion => "Kubernetes version", "Version de Kubernetes";
    Latency => "Latency", "Latence";
    CheckedAt => "Checked at", "Vérifié à";
    Error => "Error", "Erreur";
    UnknownCluster => "This cluster is not configured.", "Cette grappe n'est pas configurée.";
    SeverityCritical => "critical", "critique";
    SeverityWarning => "warning", "avertissement";
    SeverityInfo => "info", "info";
    NoFindings => "No known failure detected.", "Aucune panne connue détectée.";
    Fix => "Fix", "Correction";
    Evidence => "Evidence", "Preuves";
    Live => "● live", "● en direct";
    LiveConnecting => "○ connecting…", "○ connexion…";
    LiveReconnecting => "○ reconnecting…", "○ reconnexion…";
    ApiUnreachableSince => "API server unreachable", "API server injoignable";
    StaleState => "What follows is the last known state (stale).", "Ce qui suit est le dernier état connu (périmé).";
    NotSyncedYet => "Reading the cluster's state for the first time…", "Première lecture de l'état de la grappe…";
    WatchErrors => "Some resources cannot be watched; what depends on them is missing:", "Certaines ressources ne peuvent pas être suivies ; ce qui en dépend manque :";
    ReadyWord => "ready", "prêts";
    UnavailableWord => "unavailable", "indisponible(s)";
    UpdatedWord => "up to date", "à jour";
    AvailableWord => "available", "disponible(s)";
    NoCni => "none", "aucun";
    Pods => "Pods", "Pods";
    CniPlugin => "CNI plugin", "Plugin CNI";
    CalicoNotReadyOn => "calico-node missing or not ready on", "calico-node absent ou pas prêt sur";
    Subnets => "Subnets", "Sous-réseaux";
    IpamBlocks => "IPAM blocks", "Blocs IPAM";
    AddressesInUse => "addresses in use", "adresses utilisées";
    AffinityState => "Affinity", "Affinité";
    IpPools => "Calico IP pools", "Pools d'adresses Calico";
    NoPools => "No IP pool (Calico is not installed, or its CRDs are gone).", "Aucun pool d'adresses (Calico n'est pas installé, ou ses CRD ont disparu).";
    Name => "Name", "Nom";
    Diagnostics => "Diagnostics", "Diagnostics";
    AllStatuses => "all", "tous";
    WithFindings => "with diagnostics", "avec diagnostics";
    Search => "Search", "Rechercher";
    SearchNodesHint => "name, address, CIDR, version", "nom, adresse, CIDR, version";
    AllRoles => "all", "tous";
    NoRole => "<none>", "<aucun>";
    NodesWord => "nodes", "nœuds";
    Roles => "Roles", "Rôles";
    Age => "Age", "Âge";
    Version => "Version", "Version";
    Tunnel => "Tunnel address", "Adresse de tunnel";
    Network => "Network", "Réseau";
    NoCalicoPod => "No calico-node pod on this node.", "Pas de pod calico-node sur ce nœud.";
    Restarts => "Restarts", "Redémarrages";
    LastTermination => "Last termination", "Dernier arrêt";
    Actions => "Actions", "Actions";
    Cordon => "Cordon", "Isoler (cordon)";
    Uncordon => "Uncordon", "Réintégrer (uncordon)";
    CordonHelp => "Cordon stops new pods from being scheduled here; drain also moves the pods away.", "Cordon empêche de placer de nouveaux pods ici ; drain déplace aussi les pods.";
    NodeChanged => "Done.", "Fait.";
    NodeUnchanged => "Nothing to change: the node was already so.", "Rien à changer : le nœud l'était déjà.";
    Drain => "Drain", "Drainer";
    DrainNodes => "Nodes, drained one after another (space-separated; the run stops at the first failure)", "Nœuds, drainés l'un après l'autre (séparés par des espaces ; l'exécution s'arrête au premier échec)";
    PreviewDrain => "Preview the drain", "Prévisualiser le drain";
    DeleteEmptyDir => "Delete emptyDir data (--delete-emptydir-data)", "Supprimer les données emptyDir (--delete-emptydir-data)";
    IgnoreDaemonSets => "Ignore DaemonSet pods (--ignore-daemonsets)", "Ignorer les pods de DaemonSet (--ignore-daemonsets)";
    ForceUnmanaged => "Also pods without a controller (--force)", "Aussi les pods sans contrôleur (--force)";
    GracePeriod => "Grace period, seconds (empty: each pod's own)", "Délai de grâce, secondes (vide : celui de chaque pod)";
    DrainTimeout => "Timeout per node, seconds", "Délai maximal par nœud, secondes";
    PodSelector => "Pod selector (labels, optional)", "Sélecteur de pods (labels, facultatif)";
    SkipWait => "Skip pods terminating for longer than, seconds (0: never)", "Ignorer les pods en arrêt depuis plus de, secondes (0 : jamais)";
    Concurrency => "Evictions at once", "Évictions simultanées";
    DisableEviction => "Disable eviction: delete pods (admin)", "Désactiver l'éviction : supprimer les pods (admin)";
    Host => "Host (SSH)", "Hôte (SSH)";
    HostNotConfigured => "SSH is not configured for this cluster: add [clusters.ssh] to grappe.toml to check and reset its hosts.", "SSH n'est pas configuré pour cette grappe : ajoutez [clusters.ssh] à grappe.toml pour vérifier et réinitialiser ses hôtes.";
    HostReachedAt => "Reached at", "Joint à";
    HostKeyPinned => "Pinned host key", "Clé d'hôte épinglée";
    HostKeyNone => "no host key trusted yet", "aucune clé d'hôte approuvée";
    CheckHost => "Check the host", "Vérifier l'hôte";
    CheckHostHelp => "Read-only: kubelet status and its journal, the CNI directories and configuration, iptables and IPVS.", "Lecture seule : état du kubelet et son journal, répertoires et configuration CNI, iptables et IPVS.";
    HostKeyUntrusted => "The host presents a key that is not trusted. Compare its fingerprint with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) before trusting it.", "L'hôte présente une clé non approuvée. Comparez son empreinte avec celle de l'hôte (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) avant de l'approuver.";
    HostKeyChanged => "The host key has CHANGED since it was trusted: a reinstalled host, or someone in the middle. Nothing was run.", "La clé d'hôte a CHANGÉ depuis son approbation : hôte réinstallé, ou quelqu'un au milieu. Rien n'a été exécuté.";
    TrustKey => "Trust this key", "Approuver cette clé";
    AdminTrustsKeys => "Only an admin can trust a host key.", "Seul un administrateur peut approuver une clé d'hôte.";
    Kubelet => "Kubelet", "Kubelet";
    CalicoInJournal => "calico in the kubelet's recent journal", "calico dans le journal récent du kubelet";
    NoCalicoInJournal => "no calico line in the kubelet's recent journal", "aucune ligne calico dans le journal récent du kubelet";
    CniFiles => "CNI files", "Fichiers CNI";
    Missing => "missing", "absent";
    Empty => "empty", "vide";
    IptablesRules => "iptables rules", "Règles iptables";
    Ipvs => "IPVS", "IPVS";
    IpvsAbsent => "ipvsadm is not installed", "ipvsadm n'est pas installé";
    CheckedBy => "checked by", "vérifié par";
    PastChecks => "Earlier checks", "Vérifications précédentes";
    Table => "Table", "Table";
    Rules => "Rules", "Règles";
    Chains => "Chains", "Chaînes";
    Size => "Size", "Taille";
    Modified => "Modified", "Modifié";
    ResetNode => "Reset the node (kubeadm reset and CNI cleanup)", "Réinitialiser le nœud (kubeadm reset et nettoyage CNI)";
    ResetHelp => "Over SSH: a drain first (unless the node is cordoned or NotReady), kubeadm reset -f, rm -rf /etc/cni/net.d, iptables flushed (filter, nat, mangle), ipvsadm --clear, then a check of what is left.", "Par SSH : un drain d'abord (sauf nœud cordonné ou NotReady), kubeadm reset -f, rm -rf /etc/cni/net.d, iptables vidé (filter, nat, mangle), ipvsadm --clear, puis un relevé de ce qui reste.";
    RemoveKubeconfig => "Also remove $HOME/.kube/config", "Supprimer aussi $HOME/.kube/config";
    RemoveCniState => "Also remove /var/lib/cni (IPAM state)", "Supprimer aussi /var/lib/cni (état IPAM)";
    DeleteNodeObject => "Delete the Node object afterwards", "Supprimer ensuite l'objet Node";
    ResetCluster => "This is the control plane: reset the cluster", "C'est le plan de contrôle : réinitialiser la grappe";
    ResetClusterWarn => "Resetting the control-plane node destroys the cluster (API server, etcd data, certificates). Confirm by typing: reset cluster <name>.", "Réinitialiser le nœud du plan de contrôle détruit la grappe (API server, données etcd, certificats). Confirmez en tapant : reset cluster <nom>.";
    PreviewReset => "Preview the reset", "Prévisualiser la réinitialisation";
    TypeResetWord => "Type the node's name (reset cluster <name> for the control plane)", "Tapez le nom du nœud (reset cluster <nom> pour le plan de contrôle)";
    AwaitingApproval => "This run waits for a second admin's approval (two-person rule).", "Cette exécution attend l'approbation d'un second administrateur (règle des deux personnes).";
    Approve => "Approve", "Approuver";
    Warnings => "Warnings", "Avertissements";
    Recover => "Recover a lost kube-apiserver (over SSH)", "Rétablir un kube-apiserver perdu (par SSH)";
    RecoverHelp => "The seed's troubleshooting, needing only SSH: look at the control-plane host (kubelet, the kube-apiserver container), touch the kube-apiserver manifest and restart the kubelet, wait for /readyz, verify the container runs. Then roll back the most recent CNI install.", "Le dépannage du runbook, par SSH seulement : examiner l'hôte du plan de contrôle (kubelet, conteneur kube-apiserver), toucher le manifeste kube-apiserver et redémarrer le kubelet, attendre /readyz, vérifier que le conteneur tourne. Puis annuler la dernière installation CNI.";
    PreviewRecovery => "Preview the recovery", "Prévisualiser le rétablissement";
    GoRecover => "Recover it over SSH", "Le rétablir par SSH";
    RollBackInstall => "Roll back the most recent CNI install", "Annuler la dernière installation CNI";
    ThenRollBack => "Then roll back", "Puis annuler";
    DisableEvictionWarn => "Deleting instead of evicting bypasses every PodDisruptionBudget: a workload can lose all its replicas at once.", "Supprimer au lieu d'évincer contourne tous les PodDisruptionBudgets : une charge peut perdre toutes ses répliques d'un coup.";
    TypeNodeNames => "Type the node name(s) to confirm", "Tapez le(s) nom(s) de nœud pour confirmer";
    Verdict => "Verdict", "Verdict";
    BudgetsAtZero => "PodDisruptionBudgets allowing no disruption now", "PodDisruptionBudgets n'autorisant aucune interruption";
    BudgetsAtZeroHelp => "Evictions of the pods they cover are retried every 5 s until the budget allows them or the timeout ends the drain.", "Les évictions des pods couverts sont retentées toutes les 5 s jusqu'à ce que le budget les permette ou que le délai arrête le drain.";
    HealthyNeeded => "Healthy / needed", "Sains / requis";
    CoveredPods => "Pods of this drain it covers", "Pods de ce drain couverts";
    OperatorOnly => "Cordon and drain are for operators and admins.", "Cordon et drain sont réservés aux opérateurs et administrateurs.";
    UncordonAfter => "The drained nodes stay cordoned until you uncordon them.", "Les nœuds drainés restent isolés jusqu'à ce que vous les réintégriez.";
    Conditions => "Conditions", "Conditions";
    Type => "Type", "Type";
    OperatorComponents => "Tigera operator components (TigeraStatus)", "Composants de l'opérateur Tigera (TigeraStatus)";
    Reason => "Reason", "Raison";
    Message => "Message", "Message";
    Since => "Since", "Depuis";
    OperatorOptions => "Tigera operator options (its catalog entries only)", "Options de l'opérateur Tigera (ses entrées du catalogue seulement)";
    MigrateToOperator => "Migrate the manifest install (kube-system) to the operator: the operator reads its pool, encapsulation, MTU and autodetection and moves calico-node to calico-system node by node (leave the other fields empty)", "Migrer l'installation par manifeste (kube-system) vers l'opérateur : l'opérateur reprend son pool, son encapsulation, son MTU et sa détection d'adresse et déplace calico-node vers calico-system nœud par nœud (laissez les autres champs vides)";
    BlockSize => "IP pool block size", "Taille des blocs du pool d'adresses";
    Encapsulation => "Encapsulation", "Encapsulation";
    OptionalComponents => "Optional components", "Composants facultatifs";
    ComponentApiServer => "Calico API server (projectcalico.org/v3 through the API)", "Serveur d'API Calico (projectcalico.org/v3 via l'API)";
    ComponentGoldmane => "Goldmane (flow aggregation)", "Goldmane (agrégation des flux)";
    ComponentWhisker => "Whisker (flow UI, needs Goldmane)", "Whisker (interface des flux, demande Goldmane)";
    Taints => "Taints", "Taints";
    Namespace => "Namespace", "Namespace";
    Owner => "Owner", "Propriétaire";
    WarningEvents => "Warning events", "Événements Warning";
    LastSeen => "Last seen", "Vu le";
    Object => "Object", "Objet";
    CniInstalled => "Installed CNI", "CNI installé";
    CniInstall => "Install or upgrade a CNI", "Installer ou mettre à jour un CNI";
    CniRemove => "Remove a CNI", "Retirer un CNI";
    CniRemoveHint => "Deletes the objects of a catalog manifest, as `kubectl delete -f` does, also when the CNI was installed outside Grappe.", "Supprime les objets d'un manifeste du catalogue, comme `kubectl delete -f`, y compris si le CNI a été installé hors de Grappe.";
    CniHistory => "CNI changes", "Modifications du CNI";
    Manifest => "Manifest", "Manifeste";
    ManifestUrl => "Manifest URL (custom, unverified)", "URL du manifeste (personnalisé, non vérifié)";
    ManifestPaste => "Pasted manifest (custom, unverified)", "Manifeste collé (personnalisé, non vérifié)";
    ManifestText => "Manifest text", "Texte du manifeste";
    MoreOfRule => "Findings of this kind not shown here:", "Constats de ce type non affichés ici :";
    SeeNodesWithFindings => "see the nodes with diagnostics", "voir les nœuds avec diagnostics";
    ManifestFile => "Or a manifest file (custom, unverified, at most 5 MiB)", "Ou un fichier manifeste (personnalisé, non vérifié, 5 Mio au plus)";
    FileTooLarge => "This file is larger than 5 MiB: refused.", "Ce fichier dépasse 5 Mio : refusé.";
    FileUnreadable => "This file cannot be read as text.", "Ce fichier ne peut pas être lu comme du texte.";
    PoolCidr => "CALICO_IPV4POOL_CIDR (empty: kubeadm's podSubnet)", "CALICO_IPV4POOL_CIDR (vide : podSubnet de kubeadm)";
    Autodetection => "IP_AUTODETECTION_METHOD (empty: first-found)", "IP_AUTODETECTION_METHOD (vide : first-found)";
    MakePlan => "Plan (changes nothing)", "Planifier (ne change rien)";
    Plan => "Plan", "Plan";
    PlanHash => "Plan hash", "Empreinte du plan";
    Verified => "verified checksum", "somme de contrôle vérifiée";
    Unverified => "unverified", "non vérifié";
    Checks => "Preflight checks", "Vérifications préalables";
    Objects => "Objects", "Objets";
    Action => "Action", "Action";
    Changes => "Changes", "Modifications";
    TypeClusterName => "Type the cluster name to confirm", "Tapez le nom de la grappe pour confirmer";
    PasswordAgain => "Your password (asked again when your login is not recent)", "Votre mot de passe (redemandé si la connexion n’est pas récente)";
    Execute => "Execute", "Exécuter";
    NotRunnable => "A preflight check failed: this plan cannot be executed.", "Une vérification préalable a échoué : ce plan ne peut pas être exécuté.";
    Run => "Run", "Exécution";
    Runs => "Workflow runs", "Exécutions de workflows";
    NoRuns => "No run yet.", "Aucune exécution pour l'instant.";
    Workflow => "Workflow", "Workflow";
    Started => "Started", "Début";
    Duration => "Duration", "Durée";
    Outcome => "Outcome", "Résultat";
    Steps => "Steps", "Étapes";
    Output => "Output", "Sortie";
    Existed => "Existed before", "Existait avant";
    Done => "Done", "Fait";
    CancelRun => "Cancel", "Annuler";
    ResumeRun => "Resume", "Reprendre";
    AbandonRun => "Abandon", "Abandonner";
    RollBack => "Plan a rollback", "Planifier un retour arrière";
    InterruptedHelp => "Grappe stopped while this run was running. Resume it (each step first looks at the cluster) or abandon it.", "Grappe s'est arrêté pendant cette exécution. Reprenez-la (chaque étape regarde d'abord la grappe) ou abandonnez-la.";
    NodeLeftovers => "Files on the nodes (/etc/cni/net.d, iptables rules) are not removed by this run: they are the host operations' part (node reset).", "Les fichiers sur les nœuds (/etc/cni/net.d, règles iptables) ne sont pas retirés par cette exécution : c'est le rôle des opérations sur les hôtes (reset de nœud).";
    Sealed => "Sealed in the audit chain", "Scellée dans la chaîne d'audit";
    Confirmation => "Confirmation", "Confirmation";
    AdminOnly => "Installing, upgrading and removing a CNI is for admins.", "Installer, mettre à jour et retirer un CNI est réservé aux administrateurs.";
    SignedInAs => "Signed in as", "Connecté en tant que";
    Role => "Role", "Rôle";
    Roleer => "viewer", "lecteur";
    RoleOperator => "operator", "opérateur";
    RoleAdmin => "admin", "administrateur";
    LogOut => "Log out", "Se déconnecter";
    LogIn => "Log in", "Se connecter";
    Username => "Username", "Nom d'utilisateur";
    Password => "Password", "Mot de passe";
    InvalidCredentials => "Invalid username or password.", "Nom d'utilisateur ou mot de passe invalide.";
    Throttled => "Too many failed attempts. Wait before trying again.", "Trop d'échecs. Attendez avant de réessayer.";
    RetryIn => "Try again in (seconds):", "Réessayez dans (secondes) :";
    SessionEnded => "Your session ended. Log in again.", "Votre session a pris fin. Reconnectez-vous.";
    LoggedOut => "You are logged out.", "Vous êtes déconnecté.";
    LoginBusy => "Too many logins at once: try again in a second.", "Trop de connexions à la fois : réessayez dans une seconde.";
    LoginUnavailable => "Login is unavailable right now (the audit log cannot be written). Try again later.", "La connexion est indisponible (le journal d'audit ne peut pas être écrit). Réessayez plus tard.";
    HistoryTitle => "History", "Historique";
    HistoryIntro => "Every change and login, append-only and hash-chained.", "Chaque changement et chaque connexion, en ajout seul et chaîné par empreintes.";
    When => "When", "Quand";
    Actor => "Actor", "Acteur";
    Target => "Target", "Cible";
    Source => "Source", "Source";
    Details => "Details", "Détails";
    Any => "any", "tous";
    From => "From", "Du";
    To => "To", "Au";
    Filter => "Filter", "Filtrer";
    Reset => "Reset", "Réinitialiser";
    ExportCsv => "Export CSV", "Exporter en CSV";
    ExportJson => "Export JSON", "Exporter en JSON";
    Previous => "Previous", "Précédent";
    Next => "Next", "Suivant";
    Page => "Page", "Page";
    Of => "of", "sur";
    Records => "records", "enregistrements";
    NoRecords => "No record matches these filters.", "Aucun enregistrement ne correspond à ces filtres.";
    OutcomeAttempted => "attempted", "tenté";
    OutcomeSuccess => "success", "succès";
    OutcomeFailure => "failure", "échec";
    OutcomeDenied => "denied", "refusé";
    SettingsTitle => "Settings", "Réglages";
    Language => "Language", "Langue";
    Save => "Save", "Enregistrer";
    Users => "Users", "Utilisateurs";
    Status => "Status", "État";
    Enabled => "enabled", "actif";
    Disabled => "disabled", "désactivé";
    Disable => "Disable", "Désactiver";
    Enable => "Enable", "Activer";
    ChangeRole => "Change role", "Changer le rôle";
    Created => "Created", "Créé";
    AddUser => "Add a user", "Ajouter un utilisateur";
    Add => "Add", "Ajouter";
    GeneratedPassword => "Password for the new user (shown once, give it to them securely):", "Mot de passe du nouvel utilisateur (affiché une seule fois, transmettez-le de façon sûre) :";
    Forbidden => "You do not have the role this needs.", "Vous n'avez pas le rôle requis.";
    RunBusy => "Cluster {cluster} is busy: run {run} ({workflow}) by {actor} is {status}.", "Le cluster {cluster} est occupé : l'exécution {run} ({workflow}) de {actor} est à l'état {status}.";
    RunPlanChanged => "The cluster changed since the plan was made: plan again.", "Le cluster a changé depuis le plan : refaites le plan.";
    RunCheckFailed => "A preflight check failed: {message}", "Une vérification préalable a échoué : {message}";
    RunNotConfirmed => "Type \"{expected}\" to confirm.", "Tapez « {expected} » pour confirmer.";
    RunPasswordNeeded => "Enter your password again to {what} this run.", "Saisissez de nouveau votre mot de passe pour cette action sur l'exécution ({what}).";
    RunWrongStatus => "Run {run} is {status}, not {expected}.", "L'exécution {run} est à l'état {status}, pas {expected}.";
    RunNotRollbackable => "Run {run} cannot be rolled back: {why}", "L'exécution {run} ne peut pas être annulée : {why}";
    RunLeaseHeld => "The cluster is held by another workflow run: {holder}", "Le cluster est tenu par une autre exécution : {holder}";
    RunNotIndependent => "{approver} cannot approve this run: {why}", "{approver} ne peut pas approuver cette exécution : {why}";
    StepRolloutTimeout => "Rollout not finished after {seconds} s: {missing}", "Déploiement inachevé après {seconds} s : {missing}";
    StepCrdsNotEstablished => "{what} after {seconds} s", "{what} après {seconds} s";
    StepNotAsBefore => "Not as before the run: {differ}", "Pas comme avant l'exécution : {differ}";
    StepNotInManifest => "{object} is not in the manifest", "{object} n'est pas dans le manifeste";
    StepSnapshotSealedElsewhere => "The snapshot of {object} is a Secret sealed with another key than this server's (<database>.key): it cannot be restored", "L'instantané de {object} est un Secret scellé avec une autre clé que celle de ce serveur (<base>.key) : il ne peut pas être restauré";
    StepSnapshotUnreadable => "The snapshot of {object} cannot be read: {why}", "L'instantané de {object} est illisible : {why}";
    StepDrainBlocked => "{node}: {pods}; nothing was evicted", "{node} : {pods} ; rien n'a été évincé";
    StepDrainTimeout => "The drain of node {node} did not complete within {seconds} s: still there: {pods}", "Le drain du nœud {node} ne s'est pas terminé en {seconds} s : encore présents : {pods}";
    StepApiserverManifestMissing => "{node}: /etc/kubernetes/manifests/kube-apiserver.yaml is missing: the kubelet has no static pod to restart (`{script}` exited with {exit})", "{node} : /etc/kubernetes/manifests/kube-apiserver.yaml est absent : le kubelet n'a pas de pod statique à redémarrer (`{script}` a terminé avec {exit})";
    StepApiserverNotRunning => "{node}: the kube-apiserver container is not running (`{script}` exited with {exit})", "{node} : le conteneur kube-apiserver ne tourne pas (`{script}` a terminé avec {exit})";
    StepScriptFailed => "{node}: `{script}` exited with {exit}", "{node} : `{script}` a terminé avec {exit}";
    StepReadyzTimeout => "/readyz did not answer ok within {seconds} s: {last}", "/readyz n'a pas répondu ok en {seconds} s : {last}";
    StepReadyzTimeoutNoRollback => "/readyz did not answer ok within {seconds} s: {last} (the rollback of run {run} was not started)", "/readyz n'a pas répondu ok en {seconds} s : {last} (l'annulation de l'exécution {run} n'a pas commencé)";
    StepMigrationRefused => "The Tigera operator cannot take over the manifest install: {message}", "L'opérateur Tigera ne peut pas reprendre l'installation par manifeste : {message}";
    NotFound => "Page not found.", "Page introuvable.";
    FirstOf => "the first {shown} of {total}", "les {shown} premiers sur {total}";
    InstallMethod => "Installed", "Installation";
    InstalledByOperator => "by the Tigera operator (calico-system)", "par l'opérateur Tigera (calico-system)";
    InstalledFromManifest => "from a manifest (kube-system)", "par un manifeste (kube-system)";
    Dataplane => "Data plane", "Plan de données";
    NoSuch => "Not found:", "Introuvable :";
    Loading => "Loading…", "Chargement…";
    InternalError => "Something went wrong on the server. The error was logged with this reference:", "Une erreur s'est produite sur le serveur. Elle a été journalisée avec cette référence :";
});

/// The reader's language, from context (set by the layout once the user is known; English
/// before login).
pub fn use_lang() -> Lang {
    use_context::<Lang>().unwrap_or_default()
}

/// Shorthand: the text of `msg` in the reader's language.
pub fn t(msg: impl Text) -> &'static str {
    msg.in_lang(use_lang())
}

/// The template of a refusal or a step's failure the engine names by `code` (`{name}` marks a
/// parameter), in `lang`; `None` for a code this UI does not know (the English text is shown
/// then).
pub fn refusal(code: &str, lang: Lang) -> Option<&'static str> {
    let msg = match code {
        "run.not_independent" => Msg::RunNotIndependent,
        "step.rollout_timeout" => Msg::StepRolloutTimeout,
        "step.crds_not_established" => Msg::StepCrdsNotEstablished,
        "step.not_as_before" => Msg::StepNotAsBefore,
        "step.not_in_manifest" => Msg::StepNotInManifest,
        "step.snapshot_sealed_elsewhere" => Msg::StepSnapshotSealedElsewhere,
        "step.snapshot_unreadable" => Msg::StepSnapshotUnreadable,
        "step.drain_blocked" => Msg::StepDrainBlocked,
        "step.drain_timeout" => Msg::StepDrainTimeout,
        "step.apiserver_manifest_missing" => Msg::StepApiserverManifestMissing,
        "step.apiserver_not_running" => Msg::StepApiserverNotRunning,
        "step.script_failed" => Msg::StepScriptFailed,
        "step.readyz_timeout" => Msg::StepReadyzTimeout,
        "step.readyz_timeout_no_rollback" => Msg::StepReadyzTimeoutNoRollback,
        "step.migration_refused" => Msg::StepMigrationRefused,
        "run.busy" => Msg::RunBusy,
        "run.plan_changed" => Msg::RunPlanChanged,
        "run.check_failed" => Msg::RunCheckFailed,
        "run.not_confirmed" => Msg::RunNotConfirmed,
        "run.password_needed" => Msg::RunPasswordNeeded,
        "run.wrong_status" => Msg::RunWrongStatus,
        "run.not_rollbackable" => Msg::RunNotRollbackable,
        "run.lease_held" => Msg::RunLeaseHeld,
        _ => return None,
    };
    Some(msg.text(lang))
}

/// A coded text in `lang`: the template of `code` with `params` put in, or `fallback` (the
/// English text) for a code this UI does not know.
pub fn coded(code: &str, params: &[(String, String)], fallback: &str, lang: Lang) -> String {
    refusal(code, lang).map_or_else(
        || fallback.to_owned(),
        |template| {
            params.iter().fold(template.to_owned(), |t, (k, v)| {
                t.replace(&format!("{{{k}}}"), v)
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code the engine names (refusals and step failures) has its text in both languages.
    #[cfg(feature = "ssr")]
    #[test]
    fn every_code_of_the_engine_is_translated() {
        let engine = grappe_engine::runs::REFUSAL_CODES.iter();
        for code in engine.chain(grappe_engine::runs::FAILURE_CODES) {
            for lang in Lang::ALL {
                assert!(
                    refusal(code, lang).is_some(),
                    "{code} has no text in {lang:?}"
                );
            }
        }
    }

    #[test]
    fn french_differs_from_english_where_it_should() {
        assert_eq!(Msg::NavHistory.text(Lang::En), "History");
        assert_eq!(Msg::NavHistory.text(Lang::Fr), "Historique");
        assert_eq!(Lang::from_code("fr"), Some(Lang::Fr));
        assert_eq!(Lang::from_code("de"), None);
    }
}
