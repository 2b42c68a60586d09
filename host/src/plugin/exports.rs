//! The channel interface's exports as the host calls them: each export's
//! signature, written once as a function type ([`RenderSig`], …), is what
//! the load-time type check checks and what every later call is typed
//! with. The crate's one `unsafe` for calls ([`Exports::func`]) rests on
//! that: a signature cannot be checked as one type and called as another.

use std::marker::PhantomData;

use wasmtime::Store;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, ComponentType, Instance, Lift, Lower,
    TypedFunc,
};
use wasmtime::error::Context as _;

use super::bindings::carillon::plugin::types as w;
use super::imports::HostState;

/// `describe: func() -> manifest`
pub(crate) type DescribeSig = fn() -> w::Manifest;
/// `validate: func(config: string) -> result<_, list<config-issue>>`
pub(crate) type ValidateSig = fn(&String) -> Result<(), Vec<w::ConfigIssue>>;
/// `render: func(ctx: context, destination: destination, message: message)
/// -> result<outgoing, deliver-error>`
pub(crate) type RenderSig =
    fn(&w::Context, &w::Destination, &w::Message) -> Result<w::Outgoing, w::DeliverError>;
/// `deliver: func(ctx: context, destination: destination, message: message)
/// -> result<receipt, deliver-error>`
pub(crate) type DeliverSig =
    fn(&w::Context, &w::Destination, &w::Message) -> Result<w::Receipt, w::DeliverError>;

/// A function type read as a component function's parameters (borrowed:
/// the host lowers them from its own values) and its one result.
pub(crate) trait Signature: 'static {
    /// The parameters as passed to the call.
    type Params<'a>: ComponentNamedList + Lower + Send + Sync;
    /// The results as lifted from the call.
    type Results: ComponentNamedList + Lift + Send + Sync + 'static;
    /// The one result.
    type Output;
    /// Unwraps the one result.
    fn output(results: Self::Results) -> Self::Output;
}

impl<R> Signature for fn() -> R
where
    R: ComponentType + Lift + Send + Sync + 'static,
{
    type Params<'a> = ();
    type Results = (R,);
    type Output = R;
    fn output((result,): (R,)) -> R {
        result
    }
}

impl<A, R> Signature for fn(&A) -> R
where
    A: ComponentType + Lower + Sync + 'static,
    R: ComponentType + Lift + Send + Sync + 'static,
{
    type Params<'a> = (&'a A,);
    type Results = (R,);
    type Output = R;
    fn output((result,): (R,)) -> R {
        result
    }
}

impl<A, B, C, R> Signature for fn(&A, &B, &C) -> R
where
    A: ComponentType + Lower + Sync + 'static,
    B: ComponentType + Lower + Sync + 'static,
    C: ComponentType + Lower + Sync + 'static,
    R: ComponentType + Lift + Send + Sync + 'static,
{
    type Params<'a> = (&'a A, &'a B, &'a C);
    type Results = (R,);
    type Output = R;
    fn output((result,): (R,)) -> R {
        result
    }
}

/// Where one export sits in a component, typed by its signature.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Export<S> {
    index: ComponentExportIndex,
    name: &'static str,
    signature: PhantomData<S>,
}

impl<S: Signature> Export<S> {
    fn find(
        component: &Component,
        channel: &ComponentExportIndex,
        interface: &str,
        name: &'static str,
    ) -> Result<Self, String> {
        let index = component
            .get_export_index(Some(channel), name)
            .ok_or_else(|| format!("`{interface}` does not export `{name}`"))?;
        Ok(Export {
            index,
            name,
            signature: PhantomData,
        })
    }

    /// Checks that the export has the types of `S` on `instance`.
    fn typecheck(&self, store: &mut Store<HostState>, instance: Instance) -> wasmtime::Result<()> {
        instance
            .get_typed_func::<S::Params<'_>, S::Results>(&mut *store, self.index)
            .with_context(|| {
                format!(
                    "the `{}` export does not have the contract's types",
                    self.name
                )
            })?;
        Ok(())
    }
}

/// Where the four exports sit in a component, found once at load. A call
/// looks up only the export it runs, and after the first call on the
/// component (`describe`, at load) skips the type check: doing both for all
/// four exports on every instantiation (as the generated bindings do) was
/// a tenth of the fixed per-call cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exports {
    pub(crate) describe: Export<DescribeSig>,
    pub(crate) validate: Export<ValidateSig>,
    pub(crate) render: Export<RenderSig>,
    pub(crate) deliver: Export<DeliverSig>,
    /// Whether all four were type-checked against their signatures on an
    /// instance of this component (see [`Exports::checked`]).
    checked: bool,
}

impl Exports {
    /// Looks the exports up in `interface` (e.g. `carillon:plugin/channel@0.1.0`).
    pub(crate) fn find(component: &Component, interface: &str) -> Result<Self, String> {
        let channel = component
            .get_export_index(None, interface)
            .ok_or_else(|| format!("no `{interface}` export"))?;
        Ok(Exports {
            describe: Export::find(component, &channel, interface, "describe")?,
            validate: Export::find(component, &channel, interface, "validate")?,
            render: Export::find(component, &channel, interface, "render")?,
            deliver: Export::find(component, &channel, interface, "deliver")?,
            checked: false,
        })
    }

    /// These exports, known to have their signatures' types. A call on
    /// unchecked exports type-checks all four first ([`Exports::func`]), so
    /// call this once a call on this component has succeeded.
    pub(crate) fn checked(self) -> Self {
        Exports {
            checked: true,
            ..self
        }
    }

    /// Type-checks every export on `instance`. A component's function types
    /// are fixed by the component itself (the contract has no resources,
    /// whose identity could differ between instances), so one check holds
    /// for every later instance of it.
    fn typecheck(&self, store: &mut Store<HostState>, instance: Instance) -> wasmtime::Result<()> {
        // Destructured, so an export added to the struct cannot be left
        // out of the check.
        let Exports {
            describe,
            validate,
            render,
            deliver,
            checked: _,
        } = self;
        describe.typecheck(store, instance)?;
        validate.typecheck(store, instance)?;
        render.typecheck(store, instance)?;
        deliver.typecheck(store, instance)?;
        Ok(())
    }

    /// The export `pick` selects, as a function typed by its signature, on
    /// `instance` (an instance of this component). Unless these exports are
    /// [`checked`](Exports::checked), all four are type-checked first.
    pub(crate) fn func<'p, S: Signature>(
        &self,
        store: &mut Store<HostState>,
        instance: Instance,
        pick: fn(&Exports) -> Export<S>,
    ) -> wasmtime::Result<TypedFunc<S::Params<'p>, S::Results>> {
        if !self.checked {
            self.typecheck(store, instance)?;
        }
        let func = instance
            .get_func(&mut *store, pick(self).index)
            .ok_or_else(|| wasmtime::format_err!("the plugin lacks an export it had at load"))?;
        // SAFETY: the export was type-checked as `S` on an instance of this
        // component: just above, or, when `checked`, by the call that
        // `Runtime::load` made on the unchecked exports (`describe`), which
        // succeeded before `load` set `checked`. A component's function
        // types do not vary between its instances. The types are the same by construction:
        // `pick` returns an `Export<S>` of these exports, `typecheck` checks
        // each field with its own `S`, and the call below uses that `S`.
        // This skips repeating the check on every call (≈ 4 % of one).
        #[allow(unsafe_code)]
        let typed = unsafe { TypedFunc::<S::Params<'p>, S::Results>::new_unchecked(func) };
        Ok(typed)
    }
}
