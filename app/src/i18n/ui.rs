//! The words of the reading aids (confirmations as fields, progress bars, pictures), in their
//! own table; the same macro as [`super::Msg`]'s, so that no message exists in one language only.

use super::Lang;

super::messages!(Ui {
    TypedName => "Name typed", "Nom saisi";
    PasswordAsked => "Password asked again", "Mot de passe redemandé";
    Yes => "yes", "oui";
    No => "no", "non";
    Raw => "As recorded", "Tel qu'enregistré";
    StepsDone => "steps done", "étapes terminées";
    Progress => "Progress", "Avancement";
    Took => "took", "durée";
    Running => "running", "en cours";
    NodesReady => "nodes Ready", "nœuds Ready";
    PodsUpdated => "pods updated", "pods mis à jour";
    PodsGone => "pods evicted and gone", "pods évincés et partis";
    NodesMoved => "nodes on the operator's calico-node", "nœuds sur le calico-node de l'opérateur";
    HeldBy => "held by", "retenu par";
    About => "about", "environ";
    Left => "left", "restant";
    TimeZone => "Time zone", "Fuseau horaire";
    TimeZoneHelp => "Exact times (on hover) are shown in this IANA time zone, for example Europe/Paris. Empty: your browser's. The audit log and the exports keep UTC.",
        "Les heures exactes (au survol) sont données dans ce fuseau IANA, par exemple Europe/Paris. Vide : celui du navigateur. Le journal d'audit et les exports restent en UTC.";
    BlockMap => "Its blocks, how full", "Ses blocs, remplissage";
    Timeline => "Runs over time, by workflow", "Exécutions dans le temps, par workflow";
    TimelineSpan => "The last {span}, up to now; each run's details on hover and in the table below.",
        "Les dernières {span}, jusqu'à maintenant ; le détail de chaque exécution au survol et dans le tableau ci-dessous.";
    OtherNodes => "other nodes", "autres nœuds";
    RunInProgress => "Run in progress:", "Exécution en cours :";
    AtStep => "At step", "À l'étape";
    AddressesWord => "addresses", "adresses";
});
