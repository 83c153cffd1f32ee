//! The words of the MTU and encapsulation rules, in English and French (see [`super::texts`]).

use crate::i18n::Lang;

/// (title, explanation, fix) of an MTU rule in `lang`; `None` for another rule.
pub fn texts(rule: &str, lang: Lang) -> Option<(&'static str, &'static str, &'static str)> {
    use Lang::{En, Fr};
    Some(match (rule, lang) {
        ("calico.mtu-too-large", En) => (
            "Pod MTU {pod_mtu} too large for the path ({path_mtu}): large packets are dropped",
            "Pool {pool} encapsulates with {encapsulation}: a full-size pod packet becomes {packet} bytes between hosts, and the smallest path known carries {path_mtu} ({path}). Small packets pass (ping, DNS, TCP handshakes) while large transfers stall or reset: the classic MTU black hole.",
            "Set the pod MTU to {expected} at most: with the operator, kubectl patch installation default --type merge -p '{\"spec\":{\"calicoNetwork\":{\"mtu\":{expected}}}}'; with the manifest, set veth_mtu to {expected} in kube-system/calico-config and restart calico-node. Or raise the smaller link's MTU to match the others, then probe again.",
        ),
        ("calico.mtu-too-large", Fr) => (
            "MTU des pods {pod_mtu} trop grand pour le chemin ({path_mtu}) : les gros paquets sont perdus",
            "Le pool {pool} encapsule en {encapsulation} : un paquet de pod de taille maximale fait {packet} octets entre les hôtes, et le plus petit chemin connu en porte {path_mtu} ({path}). Les petits paquets passent (ping, DNS, poignées de main TCP) tandis que les gros transferts se figent ou sont coupés : le trou noir de MTU classique.",
            "Régler le MTU des pods à {expected} au plus : avec l'opérateur, kubectl patch installation default --type merge -p '{\"spec\":{\"calicoNetwork\":{\"mtu\":{expected}}}}' ; avec le manifeste, mettre veth_mtu à {expected} dans kube-system/calico-config et redémarrer calico-node. Ou relever le MTU du lien le plus petit au niveau des autres, puis sonder à nouveau.",
        ),
        ("calico.tunnel-address-missing", En) => (
            "{count} node(s) without their {encapsulation} tunnel address: {nodes}",
            "An enabled pool encapsulates with {encapsulation}, but calico-node on these nodes set up no tunnel ({annotation} is absent on {node}): traffic from their pods to other nodes' pods that needs the tunnel has no source address and is dropped.",
            "Look at calico-node's log on {node} (tunnel address allocation, IPAM errors, an exhausted pool), then restart it: kubectl -n <calico namespace> delete pod -l k8s-app=calico-node --field-selector spec.nodeName={node}.",
        ),
        ("calico.tunnel-address-missing", Fr) => (
            "{count} nœud(s) sans leur adresse de tunnel {encapsulation} : {nodes}",
            "Un pool actif encapsule en {encapsulation}, mais calico-node n'a monté aucun tunnel sur ces nœuds ({annotation} absente sur {node}) : le trafic de leurs pods vers les pods des autres nœuds qui passe par le tunnel n'a pas d'adresse source et est perdu.",
            "Lire le journal de calico-node sur {node} (allocation de l'adresse de tunnel, erreurs d'IPAM, pool épuisé), puis le redémarrer : kubectl -n <namespace de calico> delete pod -l k8s-app=calico-node --field-selector spec.nodeName={node}.",
        ),
        ("calico.cross-subnet-one-subnet", En) => (
            "Pool {pool} encapsulates across subnets only, and every node is in {subnet}",
            "CrossSubnet sends pod traffic unencapsulated between nodes of one subnet: here that is every packet. This works only if the network between the nodes forwards pod addresses (no cloud source/destination check, no anti-spoofing); if it does not, pods on different nodes cannot talk.",
            "Nothing to do if the underlay routes pod addresses or BGP peers with it. Otherwise set ipipMode (or vxlanMode) to Always on IPPool {pool}, or turn the cloud's source/destination check off for the nodes.",
        ),
        ("calico.cross-subnet-one-subnet", Fr) => (
            "Le pool {pool} n'encapsule qu'entre sous-réseaux, et tous les nœuds sont dans {subnet}",
            "CrossSubnet envoie sans encapsulation le trafic des pods entre nœuds d'un même sous-réseau : ici, tous les paquets. Cela ne marche que si le réseau entre les nœuds transporte les adresses des pods (pas de contrôle source/destination du cloud, pas d'anti-usurpation) ; sinon les pods de nœuds différents ne se joignent pas.",
            "Rien à faire si le réseau sous-jacent route les adresses des pods ou s'appaire en BGP. Sinon mettre ipipMode (ou vxlanMode) à Always sur l'IPPool {pool}, ou couper le contrôle source/destination du cloud pour les nœuds.",
        ),
        _ => return None,
    })
}
