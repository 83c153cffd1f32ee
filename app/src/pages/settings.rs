//! Settings: the reader's language and time zone, and user administration for admins.

use leptos::prelude::*;

use crate::api::Role;
use crate::api::session::{Me, SetLanguage, SetTimeZone};
use crate::api::users::{AddUser, SetUserDisabled, SetUserRole, UserRow, list_users};
use crate::i18n::{Lang, Msg, Ui, t, use_lang};
use crate::when::When;
use crate::{ErrorBox, PageHeader};

#[component]
pub fn SettingsPage() -> impl IntoView {
    let me = use_context::<Me>();
    let is_admin = me.as_ref().is_some_and(|m| m.role == Role::Admin);
    view! {
        <PageHeader title=t(Msg::SettingsTitle).to_owned()/>
        <LanguageForm/>
        <TimeZoneForm/>
        {is_admin.then(|| view! { <UsersAdmin/> })}
    }
}

#[component]
fn LanguageForm() -> impl IntoView {
    let action = ServerAction::<SetLanguage>::new();
    let current = use_lang();
    // With JavaScript, reload so every page picks the new language up; without it, the server
    // function's form post redirects back here.
    reload_once_saved(move || action.value().get());
    view! {
        <section class="card">
            <h2>{t(Msg::Language)}</h2>
            <ActionForm action=action attr:data-testid="language-form">
                <select name="lang" data-testid="language-select" aria-label=t(Msg::Language)>
                    {Lang::ALL
                        .into_iter()
                        .map(|l| view! { <option value=l.code() selected=l == current>{l.native_name()}</option> })
                        .collect_view()}
                </select>
                " "
                <button type="submit" class="btn btn-primary" data-testid="language-save">{t(Msg::Save)}</button>
            </ActionForm>
            {move || action.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e/> })}
        </section>
    }
}

/// Reloads the page once a preference's save (`saved`: its action's value) succeeded: every part of the page then
/// reads the new preference.
fn reload_once_saved(saved: impl Fn() -> Option<Result<(), crate::error::AppError>> + 'static) {
    Effect::new(move |_| {
        if let Some(Ok(())) = saved() {
            let _ = window().location().reload();
        }
    });
}

/// Zones offered as the reader types (any IANA name is taken).
const COMMON_ZONES: [&str; 12] = [
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
];

#[component]
fn TimeZoneForm() -> impl IntoView {
    let action = ServerAction::<SetTimeZone>::new();
    let lang = use_lang();
    let current = use_context::<Me>()
        .and_then(|m| m.time_zone)
        .unwrap_or_default();
    // As the language: reload so that every time on the page is shown in the new zone.
    reload_once_saved(move || action.value().get());
    view! {
        <section class="card">
            <h2>{Ui::TimeZone.text(lang)}</h2>
            <p class="muted small">{Ui::TimeZoneHelp.text(lang)}</p>
            <ActionForm action=action attr:data-testid="time-zone-form">
                <input type="text" name="zone" value=current list="time-zones" maxlength="64"
                    autocomplete="off" placeholder="Europe/Paris" data-testid="time-zone"
                    aria-label=Ui::TimeZone.text(lang)/>
                <datalist id="time-zones">
                    {COMMON_ZONES.map(|z| view! { <option value=z></option> }).collect_view()}
                </datalist>
                " "
                <button type="submit" class="btn btn-primary" data-testid="time-zone-save">{t(Msg::Save)}</button>
            </ActionForm>
            {move || action.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e/> })}
        </section>
    }
}

#[component]
fn UsersAdmin() -> impl IntoView {
    let set_role = ServerAction::<SetUserRole>::new();
    let set_disabled = ServerAction::<SetUserDisabled>::new();
    let add = ServerAction::<AddUser>::new();
    let users = Resource::new(
        move || {
            (
                set_role.version().get(),
                set_disabled.version().get(),
                add.version().get(),
            )
        },
        |_| list_users(),
    );
    let lang = use_lang();
    let last_error = move || {
        [set_role.value().get(), set_disabled.value().get()]
            .into_iter()
            .flatten()
            .find_map(|r| r.err())
            .or_else(|| add.value().get().and_then(|r| r.err()))
    };
    view! {
        <section class="card">
            <h2>{t(Msg::Users)}</h2>
            {move || last_error().map(|e| view! { <ErrorBox error=e/> })}
            <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        Ok(list) => view! {
                            <table tabindex="0" class="table dense" data-testid="users-table">
                                <thead>
                                    <tr>
                                        <th>{Msg::Username.text(lang)}</th>
                                        <th>{Msg::Role.text(lang)}</th>
                                        <th>{Msg::Status.text(lang)}</th>
                                        <th>{Msg::Created.text(lang)}</th>
                                        <th></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list
                                        .into_iter()
                                        .map(|u| view! { <UserLine user=u set_role=set_role set_disabled=set_disabled/> })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                            .into_any(),
                    }
                })}
            </Transition>
            <h3>{t(Msg::AddUser)}</h3>
            <ActionForm action=add attr:class="inline-form">
                <input type="text" name="name" required placeholder=t(Msg::Username) autocapitalize="none"/>
                <RoleSelect selected=Role::Viewer/>
                <super::plan::ReauthField/>
                <button type="submit" class="btn">{t(Msg::Add)}</button>
            </ActionForm>
            {move || {
                add.value()
                    .get()
                    .and_then(|r| r.ok())
                    .map(|password| view! {
                        <div class="alert alert-info">
                            {t(Msg::GeneratedPassword)} " " <code data-testid="generated-password">{password}</code>
                        </div>
                    })
            }}
        </section>
    }
}

#[component]
fn UserLine(
    user: UserRow,
    set_role: ServerAction<SetUserRole>,
    set_disabled: ServerAction<SetUserDisabled>,
) -> impl IntoView {
    let lang = use_lang();
    let status = if user.disabled {
        Msg::Disabled
    } else {
        Msg::Enabled
    };
    let toggle_label = if user.disabled {
        Msg::Enable
    } else {
        Msg::Disable
    };
    let name = user.name.clone();
    let name_for_role = user.name.clone();
    let name_for_toggle = user.name.clone();
    let disable_value = (!user.disabled).to_string();
    view! {
        <tr data-user=user.name.clone()>
            <td>{name}</td>
            <td>
                <ActionForm action=set_role attr:class="inline-form">
                    <input type="hidden" name="name" value=name_for_role/>
                    <RoleSelect selected=user.role/>
                    <super::plan::ReauthField/>
                    <button type="submit" class="btn btn-small">{Msg::ChangeRole.text(lang)}</button>
                </ActionForm>
            </td>
            <td>{status.text(lang)}</td>
            <td class="small"><When at=user.created_at.clone()/></td>
            <td>
                <ActionForm action=set_disabled attr:class="inline-form">
                    <input type="hidden" name="name" value=name_for_toggle/>
                    <input type="hidden" name="disabled" value=disable_value/>
                    <super::plan::ReauthField/>
                    <button type="submit" class="btn btn-small">{toggle_label.text(lang)}</button>
                </ActionForm>
            </td>
        </tr>
    }
}

#[component]
fn RoleSelect(selected: Role) -> impl IntoView {
    let lang = use_lang();
    view! {
        <select name="role" aria-label=Msg::Role.text(lang)>
            {Role::ALL
                .iter()
                .copied()
                .map(|r| view! { <option value=r.as_str() selected=r == selected>{crate::api::role_label(r, lang)}</option> })
                .collect_view()}
        </select>
    }
}
