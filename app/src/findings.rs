//! The words of each diagnostic rule, in English and French: a title, what it means and the
//! fix. `{name}` placeholders are filled from the finding's parameters. The engine owns the
//! rules and their ids; a rule without text here shows its id (and a unit test fails).

use grappe_views::{Finding, Severity};
use leptos::prelude::*;

use crate::i18n::{Lang, Msg, use_lang};

/// (title, explanation, fix) of a rule in `lang`, with `{name}` placeholders; `None` for a rule
/// without words (the server's tests check every rule the engine has).
pub fn texts(rule: &str, lang: Lang) -> Option<(&'static str, &'static str, &'static str)> {
    use Lang::{En, Fr};
    Some(match (rule, lang) {
        ("apiserver.unreachable", En) => (
            "API server unreachable since {since}",
            "Grappe cannot watch this cluster's API server. What this page shows is the last known state, and it is stale. After a CNI change this is often the static-pod kube-apiserver that did not come back.",
            "On the control-plane host: touch /etc/kubernetes/manifests/kube-apiserver.yaml, systemctl restart kubelet, wait for /readyz, then remove the faulty CNI (kubectl delete -f <manifest>).",
        ),
        ("apiserver.unreachable", Fr) => (
            "API server injoignable depuis {since}",
            "Grappe ne peut plus suivre l'API server de cette grappe. Ce qui est affiché est le dernier état connu, périmé. Après un changement de CNI, c'est souvent le kube-apiserver (pod statique) qui n'est pas revenu.",
            "Sur l'hôte du control plane : touch /etc/kubernetes/manifests/kube-apiserver.yaml, systemctl restart kubelet, attendre /readyz, puis retirer le CNI fautif (kubectl delete -f <manifeste>).",
        ),
        ("cni.none", En) => (
            "No CNI plugin installed: {count} node(s) NotReady",
            "The kubelets report \"cni plugin not initialized\": without a network plugin, nodes stay NotReady and pods stay Pending or ContainerCreating.",
            "Install a CNI plugin, e.g. Calico v3.25.1 with CALICO_IPV4POOL_CIDR set to the cluster's podSubnet.",
        ),
        ("cni.none", Fr) => (
            "Aucun plugin CNI installé : {count} nœud(s) NotReady",
            "Les kubelets signalent « cni plugin not initialized » : sans plugin réseau, les nœuds restent NotReady et les pods Pending ou ContainerCreating.",
            "Installer un plugin CNI, par exemple Calico v3.25.1 avec CALICO_IPV4POOL_CIDR égal au podSubnet de la grappe.",
        ),
        ("cni.several", En) => (
            "Several CNI plugins installed: {cnis}",
            "Each node runs the first configuration in /etc/cni/net.d; two plugins fight over pod addresses and routes.",
            "Keep one plugin: delete the other's manifest, then remove its file from /etc/cni/net.d on every node and restart the kubelet.",
        ),
        ("cni.several", Fr) => (
            "Plusieurs plugins CNI installés : {cnis}",
            "Chaque nœud utilise la première configuration de /etc/cni/net.d ; deux plugins se disputent les adresses et les routes des pods.",
            "Garder un seul plugin : supprimer le manifeste de l'autre, puis retirer son fichier de /etc/cni/net.d sur chaque nœud et redémarrer le kubelet.",
        ),
        ("calico.pool-overlaps-nodes", En) => (
            "IP pool {pool} overlaps the node addresses ({count} node(s))",
            "Calico took this pool when CALICO_IPV4POOL_CIDR was left commented out. Pod routes then shadow the hosts' own network: nodes and the API server become unreachable from pods.",
            "Create a pool in the cluster's podSubnet ({pod_subnet}), disable this one, and recreate the pods; next time set CALICO_IPV4POOL_CIDR before installing.",
        ),
        ("calico.pool-overlaps-nodes", Fr) => (
            "Le pool d'adresses {pool} recouvre les adresses des nœuds ({count} nœud(s))",
            "Calico a pris ce pool car CALICO_IPV4POOL_CIDR était resté commenté. Les routes des pods masquent alors le réseau des hôtes : nœuds et API server deviennent injoignables depuis les pods.",
            "Créer un pool dans le podSubnet de la grappe ({pod_subnet}), désactiver celui-ci et recréer les pods ; la prochaine fois, fixer CALICO_IPV4POOL_CIDR avant l'installation.",
        ),
        ("calico.pool-outside-pod-subnet", En) => (
            "IP pool {pool} is outside kubeadm's podSubnet {pod_subnet}",
            "The pool Calico allocates pod addresses from disagrees with the cluster's declared pod network; kube-proxy and network policies assume the podSubnet.",
            "Create a pool inside {pod_subnet} and disable this one, or set CALICO_IPV4POOL_CIDR to {pod_subnet} when installing.",
        ),
        ("calico.pool-outside-pod-subnet", Fr) => (
            "Le pool {pool} est hors du podSubnet de kubeadm {pod_subnet}",
            "Le pool où Calico prend les adresses des pods ne correspond pas au réseau de pods déclaré ; kube-proxy et les politiques réseau supposent le podSubnet.",
            "Créer un pool dans {pod_subnet} et désactiver celui-ci, ou fixer CALICO_IPV4POOL_CIDR à {pod_subnet} à l'installation.",
        ),
        ("calico.duplicate-ipv4", En) => (
            "Nodes {nodes} share the Calico address {ip}",
            "Two nodes detected the same IPv4 address (or a stale node object remains after a rename or rejoin). calico-node on one of them fails with \"Calico node '…' is already using the IPv4 address\".",
            "Fix IP autodetection on the wrong node (IP_AUTODETECTION_METHOD=kubernetes-internal-ip or can-reach=<node IP>), or delete the stale node object.",
        ),
        ("calico.duplicate-ipv4", Fr) => (
            "Les nœuds {nodes} partagent l'adresse Calico {ip}",
            "Deux nœuds ont détecté la même adresse IPv4 (ou un objet nœud périmé subsiste après un renommage). calico-node échoue sur l'un d'eux avec « Calico node '…' is already using the IPv4 address ».",
            "Corriger l'autodétection sur le mauvais nœud (IP_AUTODETECTION_METHOD=kubernetes-internal-ip ou can-reach=<IP du nœud>), ou supprimer l'objet nœud périmé.",
        ),
        ("calico.ipv4-not-internal-ip", En) => (
            "{node}: Calico uses {ipv4}, not its InternalIP {internal_ip}",
            "Calico's first-found autodetection picked another interface (a NAT NIC such as 10.0.2.15, a VIP, a bond member). BGP peers and tunnels then use the wrong address.",
            "Set IP_AUTODETECTION_METHOD=kubernetes-internal-ip (or can-reach=<node IP>) in the calico-node DaemonSet.",
        ),
        ("calico.ipv4-not-internal-ip", Fr) => (
            "{node} : Calico utilise {ipv4} et non son InternalIP {internal_ip}",
            "L'autodétection « first-found » de Calico a choisi une autre interface (NIC NAT comme 10.0.2.15, VIP, membre de bond). Pairs BGP et tunnels utilisent alors la mauvaise adresse.",
            "Fixer IP_AUTODETECTION_METHOD=kubernetes-internal-ip (ou can-reach=<IP du nœud>) dans le DaemonSet calico-node.",
        ),
        ("calico.node-not-ready", En) => (
            "{node}: calico-node is not ready ({state})",
            "The node's network agent fails its readiness check or keeps restarting: {detail}",
            "Read the message: BGP not established means TCP 179 or IP-in-IP blocked or a wrong address; \"already using the IPv4 address\" means a duplicate address; an Init: state means install-cni cannot reach the API server.",
        ),
        ("calico.node-not-ready", Fr) => (
            "{node} : calico-node n'est pas prêt ({state})",
            "L'agent réseau du nœud échoue à sa sonde de disponibilité ou redémarre en boucle : {detail}",
            "Lire le message : « BGP not established » signale TCP 179 ou IP-in-IP bloqué ou une mauvaise adresse ; « already using the IPv4 address » une adresse en double ; un état Init: un install-cni qui n'atteint pas l'API server.",
        ),
        ("node.network-unavailable", En) => (
            "{node}: network unavailable ({reason})",
            "The node's NetworkUnavailable condition is True since {since}: its network is not set up, and the node is tainted so that new pods avoid it.",
            "Check the CNI agent on this node (calico-node): its state and last messages are on the node's page.",
        ),
        ("node.network-unavailable", Fr) => (
            "{node} : réseau indisponible ({reason})",
            "La condition NetworkUnavailable du nœud est True depuis {since} : son réseau n'est pas en place, et le nœud est marqué pour que les nouveaux pods l'évitent.",
            "Vérifier l'agent CNI de ce nœud (calico-node) : son état et ses derniers messages sont sur la page du nœud.",
        ),
        ("node.network-unavailable-stale", En) => (
            "{node}: NetworkUnavailable is stale ({reason} since {since})",
            "calico-node runs and is ready on this node, but the condition it sets at shutdown was never cleared (a crash before its start hook).",
            "Restart the calico-node pod on this node: at start it sets NetworkUnavailable=False (CalicoIsUp).",
        ),
        ("node.network-unavailable-stale", Fr) => (
            "{node} : NetworkUnavailable est périmé ({reason} depuis {since})",
            "calico-node tourne et est prêt sur ce nœud, mais la condition posée à son arrêt n'a jamais été levée (plantage avant son démarrage).",
            "Redémarrer le pod calico-node de ce nœud : au démarrage il pose NetworkUnavailable=False (CalicoIsUp).",
        ),
        ("calico.kube-controllers-unavailable", En) => (
            "calico-kube-controllers is unavailable",
            "Without it, IPAM blocks of deleted nodes and stale node objects are not garbage-collected.",
            "Look at the calico-kube-controllers pod (kube-system): Pending usually means no Ready node can run it yet.",
        ),
        ("calico.kube-controllers-unavailable", Fr) => (
            "calico-kube-controllers est indisponible",
            "Sans lui, les blocs IPAM des nœuds supprimés et les objets nœuds périmés ne sont pas nettoyés.",
            "Examiner le pod calico-kube-controllers (kube-system) : Pending signifie souvent qu'aucun nœud Ready ne peut encore l'accueillir.",
        ),
        ("calico.tigerastatus-degraded", En) => (
            "Calico's {component} is Degraded: {reason} (since {since})",
            "The Tigera operator reports this component as Degraded: it could not bring it to the state its Installation asks for. Its message is in the evidence.",
            "Read the message (kubectl get tigerastatus {component} -o yaml), then the operator's log (kubectl logs -n tigera-operator deploy/tigera-operator); fix the Installation or what it depends on.",
        ),
        ("calico.tigerastatus-degraded", Fr) => (
            "Le composant {component} de Calico est Degraded : {reason} (depuis {since})",
            "L'opérateur Tigera signale ce composant comme Degraded : il n'a pas pu l'amener à l'état que demande son Installation. Son message est dans les éléments de preuve.",
            "Lire le message (kubectl get tigerastatus {component} -o yaml), puis le journal de l'opérateur (kubectl logs -n tigera-operator deploy/tigera-operator) ; corriger l'Installation ou ce dont elle dépend.",
        ),
        ("calico.apiserver-unavailable", En) => (
            "The Calico API server is unavailable",
            "The APIService v3.projectcalico.org is registered but not Available: kubectl's discovery of that group fails (\"unable to retrieve the complete list of server APIs\"), and so do tools that list every API.",
            "Look at the calico-apiserver pods (namespace calico-apiserver or calico-system) and their log; if the Calico API server is not wanted, remove its APIServer resource so that the APIService goes too.",
        ),
        ("calico.apiserver-unavailable", Fr) => (
            "L'API server de Calico est indisponible",
            "L'APIService v3.projectcalico.org est enregistrée mais pas Available : la découverte de ce groupe par kubectl échoue (« unable to retrieve the complete list of server APIs »), comme tout outil qui liste toutes les API.",
            "Examiner les pods calico-apiserver (espace calico-apiserver ou calico-system) et leur journal ; si l'API server de Calico n'est pas voulu, supprimer sa ressource APIServer pour que l'APIService parte aussi.",
        ),
        ("calico.end-of-life", En) => (
            "Calico {version} is past its end of life ({end})",
            "Calico maintains two release lines at a time; this one gets no fixes any more, security fixes included.",
            "Upgrade to a maintained line (v3.32.1 in Grappe's catalog), one minor line at a time as upstream advises; the CNI page plans it.",
        ),
        ("calico.end-of-life", Fr) => (
            "Calico {version} a dépassé sa fin de vie ({end})",
            "Calico maintient deux lignes de versions à la fois ; celle-ci ne reçoit plus de correctifs, de sécurité compris.",
            "Passer à une ligne maintenue (v3.32.1 dans le catalogue de Grappe), une ligne mineure à la fois comme le conseille l'amont ; la page CNI le planifie.",
        ),
        ("calico.untested-kubernetes", En) => (
            "Calico {version} is not tested on Kubernetes {kubernetes}",
            "Upstream tests this Calico line on Kubernetes {tested}. Other versions may work; API changes have broken older Calico on newer Kubernetes before.",
            "Upgrade Calico to a line tested on this Kubernetes version before the next Kubernetes upgrade.",
        ),
        ("calico.untested-kubernetes", Fr) => (
            "Calico {version} n'est pas testé sur Kubernetes {kubernetes}",
            "L'amont teste cette ligne de Calico sur Kubernetes {tested}. D'autres versions peuvent marcher ; des changements d'API ont déjà cassé un Calico ancien sur un Kubernetes récent.",
            "Mettre Calico à une ligne testée sur cette version de Kubernetes avant la prochaine mise à jour de Kubernetes.",
        ),
        ("kube-proxy.beside-ebpf", En) => (
            "kube-proxy still runs beside Calico's eBPF data plane",
            "In eBPF mode Calico replaces kube-proxy; both programming services at once gives inconsistent service routing.",
            "Stop kube-proxy from running on Calico's nodes (a nodeSelector that matches none on its DaemonSet), as Calico's eBPF guide describes.",
        ),
        ("kube-proxy.beside-ebpf", Fr) => (
            "kube-proxy tourne encore à côté du plan de données eBPF de Calico",
            "En mode eBPF, Calico remplace kube-proxy ; les deux programment alors les services et le routage devient incohérent.",
            "Empêcher kube-proxy de tourner sur les nœuds de Calico (un nodeSelector qui ne sélectionne rien sur son DaemonSet), comme l'indique le guide eBPF de Calico.",
        ),
        ("kube-proxy.nftables-with-iptables", En) => (
            "kube-proxy in nftables mode, Calico in iptables mode",
            "kube-proxy programs nftables while Calico's data plane is {dataplane}: Calico pairs nftables kube-proxy with its nftables data plane; mixed, rules are evaluated in an order neither expects.",
            "Set the Installation's linuxDataplane to Nftables, or kube-proxy's mode back to iptables.",
        ),
        ("kube-proxy.nftables-with-iptables", Fr) => (
            "kube-proxy en mode nftables, Calico en mode iptables",
            "kube-proxy programme nftables alors que le plan de données de Calico est {dataplane} : Calico associe kube-proxy nftables à son plan de données nftables ; mélangées, les règles s'évaluent dans un ordre qu'aucun des deux n'attend.",
            "Passer le linuxDataplane de l'Installation à Nftables, ou remettre kube-proxy en mode iptables.",
        ),
        ("kube-proxy.ipvs-deprecated", En) => (
            "kube-proxy runs in IPVS mode, deprecated since Kubernetes 1.35",
            "The IPVS mode of kube-proxy is deprecated and will go; Calico supports it still, with its own caveats (ports, policies on services).",
            "Plan kube-proxy's move to nftables (Kubernetes 1.31 or later) with Calico's nftables data plane, or to iptables.",
        ),
        ("kube-proxy.ipvs-deprecated", Fr) => (
            "kube-proxy tourne en mode IPVS, obsolète depuis Kubernetes 1.35",
            "Le mode IPVS de kube-proxy est obsolète et disparaîtra ; Calico le prend encore en charge, avec ses réserves (ports, politiques sur les services).",
            "Prévoir le passage de kube-proxy à nftables (Kubernetes 1.31 ou plus) avec le plan de données nftables de Calico, ou à iptables.",
        ),
        ("cni.node-not-covered", En) => (
            "{cni} never reached {count} node(s): {nodes}",
            "The DaemonSet {daemonset} has no pod on these nodes because it does not select them or does not tolerate their taints ({node}: {why}). Without it the kubelet reports \"cni plugin not initialized\": the node stays NotReady and its pods ContainerCreating, while the CNI runs everywhere else.",
            "Make the node match the DaemonSet: give it the label the DaemonSet selects (most often kubectl label node {node} kubernetes.io/os=linux), or widen the DaemonSet's nodeSelector or node affinity; for a taint, add a toleration to the DaemonSet (upstream's calico-node tolerates every taint: a custom manifest may not).",
        ),
        ("cni.node-not-covered", Fr) => (
            "{cni} n'a jamais atteint {count} nœud(s) : {nodes}",
            "Le DaemonSet {daemonset} n'a pas de pod sur ces nœuds car il ne les sélectionne pas ou ne tolère pas leurs taints ({node} : {why}). Sans lui le kubelet signale « cni plugin not initialized » : le nœud reste NotReady et ses pods ContainerCreating, alors que le CNI tourne partout ailleurs.",
            "Faire correspondre le nœud au DaemonSet : lui donner le label que le DaemonSet sélectionne (le plus souvent kubectl label node {node} kubernetes.io/os=linux), ou élargir le nodeSelector ou l'affinité du DaemonSet ; pour une taint, ajouter une tolérance au DaemonSet (le calico-node d'origine tolère toutes les taints : un manifeste modifié peut ne pas le faire).",
        ),
        ("calico.bgp-peer-down", En) => (
            "{count} BGP session(s) not established: {sessions}",
            "calico-node's readiness probe says BIRD has no BGP session with these peers: the routes to their pods are not exchanged, so pods on one node cannot reach pods on the other (unless an overlay carries them).",
            "On both nodes: check that TCP port 179 passes between their addresses (firewalls, security groups), that each calico-node autodetected the right address (projectcalico.org/IPv4Address), and the BGP session table (birdcl show protocols in calico-node, or a CalicoNodeStatus).",
        ),
        ("calico.bgp-peer-down", Fr) => (
            "{count} session(s) BGP non établie(s) : {sessions}",
            "La sonde de disponibilité de calico-node indique que BIRD n'a pas de session BGP avec ces pairs : les routes vers leurs pods ne sont pas échangées, les pods d'un nœud ne joignent pas ceux de l'autre (sauf si un overlay les porte).",
            "Sur les deux nœuds : vérifier que le port TCP 179 passe entre leurs adresses (pare-feu, groupes de sécurité), que chaque calico-node a détecté la bonne adresse (projectcalico.org/IPv4Address), et la table des sessions BGP (birdcl show protocols dans calico-node, ou un CalicoNodeStatus).",
        ),
        ("calico.route-reflector-single", En) => (
            "One route reflector only: {node}",
            "The node-to-node mesh is off and every node peers with the route reflectors: with one, its drain, reboot or failure leaves every other node without BGP peer.",
            "Give a second node the same route reflector cluster id (calicoctl patch node <node> -p '{\"spec\":{\"bgp\":{\"routeReflectorClusterID\":\"<id>\"}}}') before draining {node}.",
        ),
        ("calico.route-reflector-single", Fr) => (
            "Un seul réflecteur de routes : {node}",
            "Le maillage entre nœuds est coupé et chaque nœud s'appaire aux réflecteurs de routes : avec un seul, son drain, son redémarrage ou sa panne laisse tous les autres nœuds sans pair BGP.",
            "Donner le même identifiant de grappe de réflecteurs à un second nœud (calicoctl patch node <nœud> -p '{\"spec\":{\"bgp\":{\"routeReflectorClusterID\":\"<id>\"}}}') avant de drainer {node}.",
        ),
        ("calico.datastore-not-ready", En) => (
            "Calico's datastore is not ready",
            "ClusterInformation says datastoreReady: false: Calico's components stop changing the datastore (an upgrade or a restore in progress, or a lock left behind). New pods get no address and IPAM does not release anything.",
            "If no Calico upgrade or datastore migration is running, set it back: kubectl patch clusterinformations default --type merge -p '{\"spec\":{\"datastoreReady\":true}}'.",
        ),
        ("calico.datastore-not-ready", Fr) => (
            "Le datastore de Calico n'est pas prêt",
            "ClusterInformation indique datastoreReady: false : les composants de Calico cessent de modifier le datastore (mise à niveau ou restauration en cours, ou verrou oublié). Les nouveaux pods n'ont pas d'adresse et l'IPAM ne libère rien.",
            "Si aucune mise à niveau ni migration du datastore n'est en cours, le rétablir : kubectl patch clusterinformations default --type merge -p '{\"spec\":{\"datastoreReady\":true}}'.",
        ),
        ("calico.pool-full", En) => (
            "IP pool {pool} ({cidr}) is full",
            "Every address of the pool is allocated: new pods fail with \"failed to request IPv4 addresses: ... pools are likely exhausted\" and stay ContainerCreating.",
            "Release leaked addresses (IPAM page), then add a pool (a new IPPool with another CIDR) or move to a larger one; a smaller block size spreads addresses more evenly across nodes.",
        ),
        ("calico.pool-full", Fr) => (
            "Le pool d'adresses {pool} ({cidr}) est plein",
            "Toutes les adresses du pool sont allouées : les nouveaux pods échouent avec « failed to request IPv4 addresses: ... pools are likely exhausted » et restent ContainerCreating.",
            "Libérer les adresses perdues (page IPAM), puis ajouter un pool (un nouvel IPPool avec un autre CIDR) ou passer à un plus grand ; une taille de bloc plus petite répartit mieux les adresses entre nœuds.",
        ),
        ("calico.pool-nearly-full", En) => (
            "IP pool {pool} ({cidr}) is {percent} % allocated: {free} addresses left",
            "Past 90 %, nodes that need a new block may find none and borrow from others' blocks; at 100 % new pods get no address.",
            "Look for leaked addresses on the IPAM page and release them; plan another pool before it fills up.",
        ),
        ("calico.pool-nearly-full", Fr) => (
            "Le pool d'adresses {pool} ({cidr}) est alloué à {percent} % : il reste {free} adresses",
            "Au-delà de 90 %, un nœud qui a besoin d'un nouveau bloc peut n'en trouver aucun et emprunter aux blocs des autres ; à 100 %, les nouveaux pods n'ont plus d'adresse.",
            "Chercher les adresses perdues sur la page IPAM et les libérer ; prévoir un autre pool avant qu'il ne soit plein.",
        ),
        ("calico.ipam-leaked", En) => (
            "{count} addresses allocated by Calico's IPAM are used by no pod",
            "Their pods are gone but their allocations and handles stay (a CNI DEL that never ran: a crashed node or runtime). They count against the pool until released; calico-kube-controllers releases them after its grace period when it runs.",
            "Check calico-kube-controllers, then release them from the IPAM page (a guarded, audited run), or with calicoctl ipam check --show-problem-ips and calicoctl ipam release.",
        ),
        ("calico.ipam-leaked", Fr) => (
            "{count} adresses allouées par l'IPAM de Calico ne servent à aucun pod",
            "Leurs pods ont disparu mais leurs allocations et leurs handles restent (un DEL du CNI jamais exécuté : nœud ou runtime tombé). Elles comptent dans le pool jusqu'à leur libération ; calico-kube-controllers les libère après son délai de grâce quand il tourne.",
            "Vérifier calico-kube-controllers, puis les libérer depuis la page IPAM (une exécution gardée et auditée), ou avec calicoctl ipam check --show-problem-ips et calicoctl ipam release.",
        ),
        ("calico.ipam-orphan-blocks", En) => (
            "{count} IPAM blocks belong to nodes that no longer exist",
            "A deleted node's blocks keep their affinity until Calico releases them; their addresses cannot go to other nodes' pods meanwhile.",
            "Make sure calico-kube-controllers runs (it frees blocks of deleted nodes); if they stay, release the block's affinity with calicoctl ipam release or delete the node's BlockAffinity.",
        ),
        ("calico.ipam-orphan-blocks", Fr) => (
            "{count} blocs IPAM appartiennent à des nœuds qui n'existent plus",
            "Les blocs d'un nœud supprimé gardent leur affinité jusqu'à ce que Calico les libère ; leurs adresses ne peuvent pas servir aux pods des autres nœuds en attendant.",
            "Vérifier que calico-kube-controllers tourne (il libère les blocs des nœuds supprimés) ; s'ils restent, libérer l'affinité du bloc avec calicoctl ipam release ou supprimer la BlockAffinity du nœud.",
        ),
        ("calico.ipam-borrowed", En) => (
            "{count} addresses are borrowed from other nodes' blocks (on {nodes})",
            "A node that has no free address in its own blocks and can claim no new block takes one from another node's block: routes for it go through the other node (a /32 route), which costs more routes and can surprise policies tied to blocks.",
            "Usually a pool too small for its nodes at this block size: add a pool or use a smaller block size; release leaked addresses first.",
        ),
        ("calico.ipam-borrowed", Fr) => (
            "{count} adresses sont empruntées aux blocs d'autres nœuds (sur {nodes})",
            "Un nœud sans adresse libre dans ses blocs et qui ne peut plus en réclamer prend une adresse dans le bloc d'un autre nœud : sa route passe par l'autre nœud (route /32), ce qui multiplie les routes et peut surprendre des politiques liées aux blocs.",
            "En général un pool trop petit pour ses nœuds à cette taille de bloc : ajouter un pool ou réduire la taille de bloc ; libérer d'abord les adresses perdues.",
        ),
        _ => return mtu::texts(rule, lang),
    })
}

mod mtu;

fn fill(template: &str, finding: &Finding) -> String {
    let mut out = template.to_owned();
    for (k, v) in &finding.params {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// The finding's title, explanation and fix in `lang`.
pub fn describe(finding: &Finding, lang: Lang) -> (String, String, String) {
    match texts(&finding.rule, lang) {
        Some((title, explanation, fix)) => (
            fill(title, finding),
            fill(explanation, finding),
            fill(fix, finding),
        ),
        None => (finding.rule.clone(), String::new(), String::new()),
    }
}

fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "finding finding-critical",
        Severity::Warning => "finding finding-warning",
        Severity::Info => "finding finding-info",
    }
}

fn severity_label(s: Severity, lang: Lang) -> &'static str {
    match s {
        Severity::Critical => Msg::SeverityCritical.text(lang),
        Severity::Warning => Msg::SeverityWarning.text(lang),
        Severity::Info => Msg::SeverityInfo.text(lang),
    }
}

/// A list of findings with evidence, explanation and fix.
#[component]
pub fn Findings(findings: Vec<Finding>, #[prop(optional)] cluster: String) -> impl IntoView {
    let lang = use_lang();
    if findings.is_empty() {
        return view! { <p class="muted" data-testid="no-findings">{Msg::NoFindings.text(lang)}</p> }
            .into_any();
    }
    view! {
        <ul class="findings" data-testid="findings">
            {findings
                .into_iter()
                .map(|f| {
                    let (title, explanation, fix) = describe(&f, lang);
                    let nodes = f.nodes.clone();
                    let cluster = cluster.clone();
                    view! {
                        <li class=severity_class(f.severity) data-rule=f.rule.clone()>
                            <div class="finding-head">
                                <span class="badge">{severity_label(f.severity, lang)}</span>
                                <strong>{title}</strong>
                                <code class="muted small">{f.rule.clone()}</code>
                            </div>
                            <p>{explanation}</p>
                            <p><strong>{Msg::Fix.text(lang)} ": "</strong>{fix}</p>
                            <details>
                                <summary>{Msg::Evidence.text(lang)}</summary>
                                <table tabindex="0" class="table small">
                                    <tbody>
                                        {f.evidence
                                            .iter()
                                            .map(|e| view! {
                                                <tr>
                                                    <td><code>{e.object.clone()}</code></td>
                                                    <td><code>{e.field.clone()}</code></td>
                                                    <td>{e.value.clone()}</td>
                                                </tr>
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                                {
                                    let total: usize = f.param("evidence_total").parse().unwrap_or(f.evidence.len());
                                    (total > f.evidence.len()).then(|| view! {
                                        <p class="muted small">"… (+" {total - f.evidence.len()} ")"</p>
                                    })
                                }
                            </details>
                            {(!nodes.is_empty() && !cluster.is_empty()).then(|| view! {
                                <p class="small">
                                    {nodes.iter().take(10).map(|n| {
                                        let href = format!("/c/{cluster}/nodes/{n}");
                                        view! { <a href=href>{n.clone()}</a> " " }
                                    }).collect_view()}
                                    {
                                        let total = f.param("nodes_total").parse().unwrap_or(nodes.len());
                                        (total > 10).then(|| format!("… (+{})", total - 10))
                                    }
                                </p>
                            })}
                            {f.param("rule_more").parse::<usize>().ok().filter(|n| *n > 0).map(|n| {
                                let href = format!("/c/{cluster}/nodes?status=issues");
                                view! {
                                    <p class="small" data-testid="rule-more">
                                        {Msg::MoreOfRule.text(lang)} " " <strong>{n}</strong>
                                        {(!cluster.is_empty()).then(|| view! {
                                            " · " <a href=href>{Msg::SeeNodesWithFindings.text(lang)}</a>
                                        })}
                                    </p>
                                }
                            })}
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled() {
        let f = Finding {
            rule: "calico.duplicate-ipv4".into(),
            severity: Severity::Critical,
            nodes: vec!["rigel".into(), "saiph".into()],
            evidence: vec![],
            params: vec![
                ("ip".into(), "10.13.0.2".into()),
                ("nodes".into(), "rigel, saiph".into()),
            ],
        };
        let (title, _, _) = describe(&f, Lang::Fr);
        assert_eq!(
            title,
            "Les nœuds rigel, saiph partagent l'adresse Calico 10.13.0.2"
        );
    }

    /// The overview shows a few findings of a rule; the last one says how many more there are
    /// and links to the nodes with diagnostics.
    #[cfg(feature = "ssr")]
    #[test]
    fn the_findings_of_a_rule_not_shown_are_counted_and_linked() {
        let f = Finding {
            rule: "calico.node-not-ready".into(),
            severity: Severity::Critical,
            nodes: vec!["orion-w0004".into()],
            evidence: vec![],
            params: vec![("rule_more".into(), "1607".into())],
        };
        let html = Owner::new().with(|| {
            view! { <Findings findings=vec![f.clone()] cluster="bench".to_owned()/> }.to_html()
        });
        assert!(html.contains("data-testid=\"rule-more\""), "{html}");
        assert!(html.contains("1607"), "{html}");
        assert!(html.contains("/c/bench/nodes?status=issues"), "{html}");
        let without = Owner::new().with(|| {
            let f = Finding {
                params: Vec::new(),
                ..f
            };
            view! { <Findings findings=vec![f] cluster="bench".to_owned()/> }.to_html()
        });
        assert!(!without.contains("rule-more"), "{without}");
    }
}
