//! The network doctor's words (MTU and encapsulation, the BGP session table), in their own
//! table so that each stays readable; the same macro as [`super::Msg`]'s, so that no message
//! exists in one language only.

use super::Lang;

super::messages!(Net {
    NavMtu => "MTU", "MTU";
    IpamUnread => "Still reading the cluster's objects for the first time: leaked and unallocated addresses are counted once every pod, block and handle is read.", "Première lecture des objets de la grappe en cours : les adresses fuitées ou non allouées sont comptées une fois chaque pod, bloc et handle lu.";
    MtuNoCalico => "No Calico here: no pool whose encapsulation to budget.", "Pas de Calico ici : aucun pool dont budgéter l'encapsulation.";
    MtuPools => "Pod MTU per pool", "MTU des pods par pool";
    MtuPoolsHelp => "A pod's packets get the encapsulation's bytes on the way between hosts: the pod MTU must leave room for them on the smallest path. Paths come from the hosts' checks and the probes below; without either 1500 is assumed.", "Les paquets d'un pod reçoivent les octets de l'encapsulation entre les hôtes : le MTU des pods doit leur laisser la place sur le plus petit chemin. Les chemins viennent des vérifications des hôtes et des sondes ci-dessous ; sans elles, 1500 est supposé.";
    MtuEncapsulation => "Encapsulation", "Encapsulation";
    MtuPath => "Smallest path MTU", "Plus petit MTU de chemin";
    MtuExpected => "Largest pod MTU it carries", "Plus grand MTU de pod qu'il porte";
    MtuPod => "Pod MTU", "MTU des pods";
    MtuAssumed => "assumed (nothing measured yet)", "supposé (rien de mesuré encore)";
    MtuFits => "✓ fits", "✓ tient";
    MtuSmaller => "smaller than it could be", "plus petit que possible";
    MtuTooLarge => "✗ too large: large packets dropped", "✗ trop grand : gros paquets perdus";
    MtuCrossSubnet => "Pool {pool} encapsulates only across subnets, and every node is in {subnet}: no packet is encapsulated.", "Le pool {pool} n'encapsule qu'entre sous-réseaux, et tous les nœuds sont dans {subnet} : aucun paquet n'est encapsulé.";
    MtuMissingTunnels => "Nodes without their tunnel address", "Nœuds sans leur adresse de tunnel";
    MtuHosts => "Hosts' links (from their checks)", "Liens des hôtes (d'après leurs vérifications)";
    MtuNoHosts => "No host checked yet: run a check from a node's page (Host) to read its links' MTUs.", "Aucun hôte vérifié : lancer une vérification depuis la page d'un nœud (Hôte) pour lire le MTU de ses liens.";
    MtuUplink => "Uplink", "Lien sortant";
    MtuChecked => "Checked", "Vérifié";
    MtuProbe => "Probe the path MTU", "Sonder le MTU du chemin";
    MtuProbeHelp => "Over SSH on the first node: ping with Don't Fragment to the second node's address, halving the sizes until the largest packet that passes (at most 14 packets, a second each). Audited.", "Par SSH sur le premier nœud : ping avec Don't Fragment vers l'adresse du second, en coupant les tailles en deux jusqu'au plus gros paquet qui passe (14 paquets au plus, une seconde chacun). Journalisé.";
    MtuFrom => "From", "De";
    MtuTo => "to", "vers";
    MtuProbeRun => "Probe", "Sonder";
    MtuProbing => "Probing…", "Sondage…";
    MtuProbes => "Latest probes", "Dernières sondes";
    MtuPodsSend => "Pods send packets of up to {size} bytes (pod MTU and encapsulation).", "Les pods envoient des paquets jusqu'à {size} octets (MTU des pods et encapsulation).";
    MtuPathCol => "Path", "Chemin";
    MtuLargest => "Largest packet through", "Plus gros paquet passé";
    MtuSteps => "Packets sent", "Paquets envoyés";
    MtuNothingPassed => "nothing passed", "rien n'est passé";
    BgpTable => "A node's BGP sessions", "Les sessions BGP d'un nœud";
    BgpTableHelp => "Over SSH on the node: birdcl show protocols against calico-node's BIRD, the sessions as BIRD has them (not only the failures the readiness probe reports). Audited.", "Par SSH sur le nœud : birdcl show protocols auprès du BIRD de calico-node, les sessions telles que BIRD les voit (pas seulement les pannes que la sonde signale). Journalisé.";
    BgpTableRead => "Read the sessions", "Lire les sessions";
    BgpTableOf => "BGP sessions of {node}", "Sessions BGP de {node}";
    BgpState => "State", "État";
    BgpStateSince => "Since", "Depuis";
});
