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
    PodsGone => "pods evicted and gone", "pods évincés et partis";
    HeldBy => "held by", "retenu par";
    About => "about", "environ";
    Left => "left", "restant";
});
