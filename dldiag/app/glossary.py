"""The app's words: a glossary of every term it shows, and each panel's "how to read this".

Written for a domain scientist who is not an ML expert (an astronomer preparing a talk): every
term is defined in plain language, with which way is better where that applies. Everything is
plain data (:data:`GLOSSARY`, :data:`GLOSSARY_TOPICS`, :data:`PANEL_HELP`) plus pure component
builders (:func:`term`, :func:`glossary_section`, :func:`panel_help`) that return dash ``html``
components and touch no state.

Long texts may link other entries with a small markup, ``[[key]]`` (the entry's display name)
or ``[[key|shown text]]``; :func:`rich_text` renders it as :func:`term` links and
:func:`plain_text` as plain words (for tooltips, exports and length checks). Short texts are
plain, because they become ``title`` tooltips.

The glossary's anchors are ``glossary-<key>``: a :func:`term` link jumps to the entry in the
:func:`glossary_section`, wherever the page places it (the section's id is ``glossary``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

from dash import html

__all__ = [
    "GlossaryEntry",
    "PanelHelp",
    "GLOSSARY",
    "GLOSSARY_TOPICS",
    "PANEL_HELP",
    "PANEL_KEYS",
    "HELP_SUMMARY",
    "ESTIMATOR_HINT",
    "entry",
    "tooltip",
    "plain_text",
    "rich_text",
    "term",
    "glossary_section",
    "panel_help",
    "accuracy_phrase",
    "anchor_id",
    "links_in",
]


@dataclass(frozen=True)
class GlossaryEntry:
    """One term of the glossary.

    Attributes
    ----------
    key : str
        Identifier, also the anchor's suffix (``glossary-<key>``); sampler entries use the
        sampler's registry name.
    term : str
        Display name.
    short : str
        One plain sentence (no markup), the hover tooltip.
    long : str
        Two to four sentences: how to read it, which way is better where that applies. May link
        other entries with ``[[key]]`` or ``[[key|text]]``.
    see : tuple of str
        Keys of related entries.
    """

    key: str
    term: str
    short: str
    long: str
    see: tuple[str, ...] = ()


@dataclass(frozen=True)
class PanelHelp:
    """The "how to read this" of one panel of the explorer.

    Attributes
    ----------
    key : str
        The panel's name (as in :data:`dldiag.app.layout.PANELS`, plus ``gallery``).
    title : str
        The panel's name in words.
    shows : str
        What the panel shows.
    read : str
        How to read it.
    better : str
        Which way is better, or that nothing is (it describes the data).
    see : tuple of str
        Glossary keys of the terms the panel uses (listed as links under the texts).
    """

    key: str
    title: str
    shows: str
    read: str
    better: str
    see: tuple[str, ...] = ()


def _e(key, term_, short, long, see=()):
    return GlossaryEntry(key, term_, short, long, tuple(see))


_WEIGHTED_LONG = (
    "Each cluster still gets seats in proportion to its size, but they are filled by a random draw in "
    "which the lower an item's [[likelihood-ratio]], the likelier it is picked; the ratio is capped, so "
    "that [[exemplar|exemplars]] keep a small chance. [[j|j]] has no effect, and the [[seed]] changes the "
    "sample (the report averages 10 seeds)."
)

_ENTRIES = (
    # ---------------------------------------------------------------- the data and the model
    _e("item", "item",
       "One input of the evaluation data (an image, or a row of measurements), known by its index number.",
       "The evaluation data is the labelled set the model did not train on (the test split); dldiag "
       "diagnoses the model on it. Hover a dot in the [[latent-space|latent view]] to see the item, its "
       "[[class|true label]] and its [[predicted-label|prediction]].",
       ("class", "predicted-label", "full-data")),
    _e("class", "class (true label)",
       "The category an item really belongs to, as given by the data set's labels.",
       "The class is the answer the model should give. The class control picks items by their true class, "
       "not by what the model said; see [[predicted-label]] for that, and [[outcome|outcome]] for whether the "
       "two agree.",
       ("predicted-label", "outcome", "group")),
    _e("predicted-label", "predicted label",
       "The class the model assigns to an item: the one with the highest score in its last layer.",
       "The prediction comes from the [[logits]], the model's one score per class: the largest score wins. "
       "When it equals the [[class|true label]], the [[outcome|outcome]] is correct.",
       ("class", "outcome", "logits", "confidence")),
    _e("outcome", "outcome (correct / incorrect)",
       "Whether the model got an item right: correct when its prediction equals the true label, incorrect "
       "otherwise.",
       "Outcome is the third part of a [[group]]: the items of a class that the model gets right and those it "
       "gets wrong are studied separately, because they often drive the network differently. The outcome "
       "control's \"all\" takes both.",
       ("group", "class", "predicted-label")),
    _e("model-accuracy", "model accuracy",
       "The share of all evaluation items that the model classifies correctly.",
       "It is computed once, on every item of the evaluation data, and does not depend on the sample. It is "
       "the number to quote for how good the model is; the [[sample-accuracy]] shown beside it describes the "
       "sample, not the model.",
       ("sample-accuracy", "confusion-matrix")),
    _e("confidence", "confidence",
       "How sure the model is of its prediction: the probability it gives to the class it predicts, from 0 "
       "to 1.",
       "The model's class scores ([[logits]]) are turned into probabilities that add up to 1 (the softmax), "
       "and the confidence is the largest of them. Confident mistakes, wrong answers given with a "
       "probability near 1, are often the most telling items: mislabelled, unusual or truly ambiguous "
       "inputs.",
       ("logits", "predicted-label")),
    _e("confusion-matrix", "confusion matrix",
       "A table that counts items by true class (rows) and predicted class (columns); the diagonal holds the "
       "correct predictions.",
       "Every cell off the diagonal is one kind of mistake: row Shirt, column T-shirt/top counts the shirts "
       "the model calls T-shirts. In panel (e) the colour shows the full data's count on a logarithmic scale, "
       "so that small error cells stay visible, and each cell reads the full count above the sample's. Click "
       "a cell to make it the [[group]] ([[predicted-as]]).",
       ("predicted-as", "outcome", "model-accuracy")),
    _e("predicted-as", "a predicted as b",
       "The items of true class a that the model labels as class b: one cell of the confusion matrix.",
       "It narrows a [[group]] to one kind of mistake (coats predicted as pullovers, say) instead of all "
       "misclassified coats. With a = b it is the correctly classified items of a. Clicking a cell of the "
       "[[confusion-matrix]] sets it.",
       ("confusion-matrix", "group", "outcome")),
    _e("layer", "layer",
       "One stage of the network, which turns the numbers of the stage before into new ones; an input passes "
       "through the layers in order.",
       "By default dldiag looks at each convolution or fully connected block (after the step that sets "
       "negative values to zero) and at the final [[logits]]. Early layers respond to simple patterns such as edges, later "
       "ones to whole shapes. The layer marked \"(latent)\" in the layer menu is the one whose output is the "
       "[[latent-space]].",
       ("unit", "latent-space", "logits")),
    _e("unit", "unit (neuron)",
       "One number in a layer's output for an item: the network's version of a single detector.",
       "A convolution layer outputs a stack of feature maps, one per learned pattern (channel); each position "
       "of each map is a unit, named \"conv1 · ch 5 (y 1, x 14)\" for channel 5, row 1, column 14. Units of a "
       "fully connected layer are named \"fc2 · 12\", those of the [[logits]] by class name, and in channel "
       "[[unit-mode|unit mode]] a unit is a whole map, \"conv1 · ch 5\".",
       ("activation", "layer", "unit-mode")),
    _e("activation", "activation",
       "The value a unit outputs for one item: large when the unit responds strongly to something in the "
       "input.",
       "In most layers dldiag looks at, negative values are set to zero (not in the logits), so most "
       "activations are zero or positive and many units are silent for a given item. A unit that is active "
       "for most items of a class is one the model relies on to recognise that class.",
       ("unit", "mean-activation", "arg-max-unit")),
    _e("unit-mode", "unit mode (units / channels)",
       "Whether a convolution layer's units are single positions of its feature maps (units) or whole maps "
       "averaged over space (channels).",
       "A convolution layer repeats each detector (channel) at every position of the image, so it has "
       "thousands of position units; channel mode averages each map to one number, giving a few tens of "
       "units that each stand for one learned pattern, wherever it appears. Channels are easier to read for "
       "wide layers; fully connected layers are the same in both modes.",
       ("unit", "layer")),
    _e("logits", "logits",
       "The last layer's output: one score per class, the largest of which is the model's prediction.",
       "Logits are raw scores, not probabilities; turned into probabilities that add up to 1 they give the "
       "model's [[confidence]]. In the panels, the logits layer's units are named after the classes.",
       ("predicted-label", "confidence", "layer")),
    _e("latent-space", "latent space",
       "The output of the model's last hidden layer: each item as a list of numbers summarising what the "
       "model sees in it.",
       "Items the model finds similar lie close together there, so classes form clusters and mistakes sit "
       "between them, near the [[decision-boundary|decision boundaries]]. It is cheap to compute for every "
       "item (84 numbers per item for LeNet-5), which is why the samplers choose their items in it. The "
       "latent view shows it flattened to 2-D by a [[projection]].",
       ("projection", "decision-boundary", "sampler")),
    _e("decision-boundary", "decision boundary",
       "Where, in the latent space, the model's answer switches from one class to another.",
       "Items near a boundary are those the model is least sure about, and most of its mistakes lie there. "
       "The boundary-seeking samplers ([[max-margin]], [[gmm-full]], [[eb-tree]]) over-represent these items "
       "because that is where a diagnosis learns most.",
       ("exemplar", "likelihood-ratio", "j")),
    _e("exemplar", "exemplar",
       "A typical item, deep inside its cluster and far from any decision boundary (a high likelihood "
       "ratio).",
       "Exemplars show what the model takes for a clear case of a class. The likelihood-ratio samplers take "
       "the share 1 − [[j|j]] of their items from this end and the share j from the boundary end, whose items "
       "the report calls outliers.",
       ("decision-boundary", "likelihood-ratio", "j")),
    # ---------------------------------------------------------------- groups and the three questions
    _e("group", "group",
       "The items of one true class with one outcome, looked at in one layer: for example Shirt, incorrect, "
       "in conv2.",
       "Every answer in panels (a)–(c) is for the current group, named in the bar above them. It can be "
       "narrowed to one cell of the [[confusion-matrix]] ([[predicted-as]]) or to a [[selection]] drawn in "
       "the latent view; \"all items\" means no narrowing. The scores of panel (d) are averages over all "
       "[[n-groups|groups]].",
       ("outcome", "class", "layer", "n-groups", "absent-group")),
    _e("n-groups", "number of groups (\"100 groups\")",
       "How many layer × class × outcome combinations have at least one item in the full data; panel (d) "
       "averages over all of them.",
       "With 5 layers (LeNet-5's) and 10 classes there are at most 5 × 10 × 2 = 100; a class the model never gets wrong "
       "has no incorrect group, which lowers the count. Every group counts equally in the average, so a "
       "group of three misclassified items weighs as much as a group of a thousand correct ones.",
       ("group", "query-set-accuracy", "absent-group")),
    _e("selection", "selection (box or lasso)",
       "Items you draw around in the latent view with the box or lasso tool; the panels then describe only "
       "those items.",
       "With a selection, the group is limited to the items inside it: the panels compare the sample's "
       "members inside the selection with all selected items of the chosen class and outcome. Use it to ask "
       "about a region of the map, such as a patch of mistakes between two clusters.",
       ("group", "latent-space")),
    _e("query-set", "query set",
       "A family of diagnosis questions asked of every group: S1 (top-k units), S2 (mean activations) and "
       "S3 (most-active-unit distribution).",
       "The report gathers the questions of many model-debugging papers into these three families. Each is "
       "answered for every [[group]] on the sample and on the [[full-data]], and the two answers are "
       "compared by a score ([[s1|S1]], [[s2|S2]], [[s3|S3]]).",
       ("s1", "s2", "s3", "query-set-accuracy")),
    _e("top-k", "top-k",
       "The k units of a layer with the highest mean activation over a group: the units that respond most "
       "to it.",
       "k is set in the controls (1 to 50, 10 by default); ties go to the lower unit number. Query set "
       "[[s1|S1]] asks whether the sample finds the same k units as the full data.",
       ("s1", "mean-activation", "unit")),
    _e("mean-activation", "mean activation",
       "A unit's activation averaged over the items of a group.",
       "The list of every unit's mean is the group's activation pattern, which query set [[s2|S2]] compares "
       "between the sample and the full data. Panel (b) draws it as images, and its largest entries are the "
       "[[top-k]] units of [[s1|S1]].",
       ("s2", "activation", "top-k")),
    _e("arg-max-unit", "arg-max (most active) unit",
       "For one item, the unit of a layer with the largest activation: the detector that fires hardest for "
       "it.",
       "Counting, over a group's items, how often each unit is the most active one gives the arg-max "
       "distribution that query set [[s3|S3]] compares (ties go to the lower unit number). A few tall bars mean "
       "the layer has a few dominant detectors for the group; a flat spread means no single unit stands "
       "out.",
       ("s3", "activation", "unit")),
    # ---------------------------------------------------------------- samples and samplers
    _e("sample", "sample",
       "The small set of items a sampler picks; only for these does dldiag compute the costly numbers from "
       "inside the model.",
       "Recording every unit of every layer for every item takes 50 to 3000 times more space than the data "
       "itself, so dldiag answers the questions from the sample instead. Its members are drawn in full colour "
       "in the latent view, and the scores in panels (a)–(d) say how close its answers come to the "
       "[[full-data]]'s.",
       ("sampler", "fraction", "full-data")),
    _e("full-data", "full data",
       "All items of the evaluation data; their answers are computed once, only to grade the sample's "
       "answers.",
       "The near-black bars and the \"full data\" images are the exact answers for the group, from one pass over "
       "every item. On a large data set this pass is what dldiag lets you avoid; here it is the reference "
       "that shows how far the sample can be trusted.",
       ("sample", "query-set")),
    _e("fraction", "fraction",
       "The share of the evaluation items that goes into the sample: 5 % of 10,000 items is 500 items.",
       "Every sampler returns exactly fraction × N items, rounded (the app offers 1 % to 80 %). Larger "
       "samples answer more accurately but cost more; the report's reference point is 5 %.",
       ("sample", "sampler")),
    _e("seed", "seed",
       "A number that fixes a sampler's random choices, so that the same settings give the same sample "
       "again.",
       "Only the randomised samplers change with it: [[random]], [[stratified-cm]], [[latent-grid]] and the "
       "three weighted ones. The others are fixed once, when they are fitted, so the seed does not change "
       "them. The [[random-baseline]] uses the same seed.",
       ("sampler", "random-baseline")),
    _e("sampler", "sampler",
       "A rule for choosing which items go into the sample, applied in the latent space.",
       "Each sampler is fitted once to the [[latent-space]] (some also use the labels and predictions) and "
       "then draws a sample of any [[fraction]] instantly. Some spread the sample evenly ([[random]], "
       "[[vas]]); others deliberately over-represent the [[decision-boundary|decision boundaries]], where "
       "the mistakes are ([[max-margin]], [[gmm-full]], [[eb-tree]]).",
       ("sample", "fraction", "j", "seed")),
    _e("sample-accuracy", "sample accuracy",
       "The share of the sample's items that the model classifies correctly: a property of the sample, not a "
       "measure of the model.",
       "Boundary-seeking samplers pick misclassified items on purpose, so their sample accuracy is far below "
       "the model's (63.6 % against 90.7 %, say) although the model is the same. A random sample's accuracy "
       "is close to the [[model-accuracy]]; a low sample accuracy means that the sampler found the mistakes, "
       "which is what a diagnosis needs.",
       ("model-accuracy", "decision-boundary", "table-iv-row")),
    _e("j", "j (share from the boundary end)",
       "For the likelihood-ratio samplers, the share of the sample taken from items near a decision "
       "boundary; the rest are typical items.",
       "Each cluster's items are sorted by [[likelihood-ratio]]: a share j of its seats goes to the lowest "
       "ratios (boundary items, the report's outliers) and 1 − j to the highest ([[exemplar|exemplars]]). "
       "j = 0 takes only exemplars and j = 1 only boundary items; the report's default is 0.7. Only "
       "[[gmm-full]], [[gmm-spherical]] and [[max-margin]] use it, and every other sampler ignores it.",
       ("likelihood-ratio", "decision-boundary", "exemplar")),
    _e("likelihood-ratio", "likelihood ratio",
       "How much more likely an item is to belong to its own cluster than to all the other clusters "
       "together.",
       "For an item x in cluster A it is P(A | x) / P(not A | x), from a Gaussian mixture ([[gmm-full]], "
       "[[gmm-spherical]]) or a calibrated linear classifier ([[max-margin]]). A ratio near 1 puts the item "
       "on a [[decision-boundary]], and a large ratio marks an [[exemplar]]. The ratio samplers sort each "
       "cluster by it and take items from both ends ([[j|j]]).",
       ("log-likelihood-ratio", "j", "decision-boundary")),
    _e("log-likelihood-ratio", "log likelihood ratio",
       "The natural logarithm of the likelihood ratio, shown when you hover an item: near 0 on a boundary, "
       "large and positive for clear cases.",
       "+4.24 means the item's own cluster is e^4.24 ≈ 70 times more likely than all the others together. "
       "Below 0, its cluster is the single most likely one but less likely than the rest combined. The name "
       "in brackets is the sampler whose fit gave the number: the current sampler if it has one, otherwise "
       "[[max-margin]].",
       ("likelihood-ratio", "decision-boundary", "exemplar")),
    _e("random", "random",
       "Every item has the same chance of being picked; the baseline every other sampler must beat.",
       "Uniform sampling without replacement, the report's \"uniform\" technique. At small fractions it "
       "often misses the rare groups of misclassified items entirely, which gives it the worst scores in "
       "those groups ([[absent-group]]).",
       ("random-baseline", "absent-group")),
    _e("stratified-cm", "stratified-cm",
       "Takes items from every cell of the confusion matrix in proportion to the cell's size, at random "
       "inside each cell.",
       "\"Stratified by confusion matrix\": each combination of true and predicted class (a "
       "[[confusion-matrix]] cell) gets its share of the sample, rounded so that the total is exact. The "
       "share of mistakes in the sample is that of the data, but a small error cell can still get no item at "
       "small fractions. It uses the labels and predictions, not the latent space.",
       ("confusion-matrix", "random")),
    _e("latent-grid", "latent-grid",
       "Cuts the latent space into 32 boxes (its 5 main directions, each split in two) and takes the same "
       "number of items from every box.",
       "The report's \"simple latent space\" sample: the latent space is reduced to its 5 main directions by "
       "[[pca|PCA]], each is split at its median, and every non-empty box gets an equal share, drawn at "
       "random. A box with too few items gives all it has, and the missing seats are drawn at random from "
       "the rest. Equal shares over-represent sparse regions, but not the boundaries as such.",
       ("latent-space", "pca")),
    _e("vas", "vas",
       "Visualization-aware sampling: picks items that spread as evenly as possible over the latent space, "
       "like a well-drawn scatter plot.",
       "VAS (Park et al., 2016) swaps items in and out of the sample so that its items crowd each other as "
       "little as possible: dense regions are thinned and sparse ones kept. It uses neither labels nor "
       "predictions, and it is fixed by its fit, so the [[seed]] does not change it.",
       ("latent-space", "random")),
    _e("eb-tree", "eb-tree",
       "Explicable boundary tree: keeps the items needed to trace the model's decision boundaries, so its "
       "sample is rich in mistakes.",
       "Items are visited in a random order, and an item joins the tree when the nearest tree item it reaches "
       "has a different predicted label, so the tree grows along the boundaries between the model's "
       "predicted classes. Its natural size is the tree's own, larger when the boundaries are tangled (about "
       "3 % of MNIST in the report). In the app, a larger fraction grows the tree in further passes and then "
       "fills up at random; a smaller one keeps the first items added.",
       ("decision-boundary", "predicted-label")),
    _e("gmm-full", "gmm-full",
       "Fits one cluster of any shape per class to the latent space and takes a share j of each cluster "
       "from its boundary, the rest from its centre.",
       "A Gaussian mixture describes the data as overlapping bell-shaped clusters, here as many as there are "
       "classes, each free to be a stretched, tilted ellipsoid (full covariance). It is fitted without labels, "
       "on the 32 main directions of the latent space; each item belongs to its most likely cluster and is "
       "ranked by its [[likelihood-ratio]], and [[j|j]] sets the boundary share.",
       ("likelihood-ratio", "j", "gmm-spherical", "gmm-full-weighted")),
    _e("gmm-spherical", "gmm-spherical",
       "Like gmm-full, but every cluster is round (the same spread in all directions): simpler, and a poorer "
       "fit to stretched clusters.",
       "Round clusters describe stretched or lopsided classes badly, so the ranking from boundary to centre "
       "is less reliable; the report found it worse than [[gmm-full]] on both its data sets, most of all on "
       "the galaxies. Items are ranked by [[likelihood-ratio]] and [[j|j]] sets the boundary share, as for "
       "gmm-full.",
       ("gmm-full", "likelihood-ratio", "j", "gmm-spherical-weighted")),
    _e("max-margin", "max-margin",
       "Trains a linear classifier (an SVM) on the latent space and takes a share j of each predicted class "
       "from its boundary, the rest from its centre.",
       "A support vector machine (SVM) separates the classes by flat boundaries with the widest possible "
       "margin, trained on the true labels; its scores are turned into probabilities, which give each item a "
       "[[likelihood-ratio]] for the class the SVM predicts. It was the report's best sampler on all three "
       "query sets. [[j|j]] sets the boundary share, and the [[seed]] does not change it.",
       ("likelihood-ratio", "j", "max-margin-weighted")),
    _e("gmm-full-weighted", "gmm-full-weighted",
       "gmm-full's clusters, filled by a random draw in which boundary items are likelier (chance ∝ 1 / "
       "likelihood ratio) instead of by j.",
       _WEIGHTED_LONG, ("gmm-full", "likelihood-ratio")),
    _e("gmm-spherical-weighted", "gmm-spherical-weighted",
       "gmm-spherical's clusters, filled by a random draw in which boundary items are likelier (chance ∝ 1 "
       "/ likelihood ratio) instead of by j.",
       _WEIGHTED_LONG, ("gmm-spherical", "likelihood-ratio")),
    _e("max-margin-weighted", "max-margin-weighted",
       "max-margin's classes, filled by a random draw in which boundary items are likelier (chance ∝ 1 / "
       "likelihood ratio) instead of by j.",
       _WEIGHTED_LONG, ("max-margin", "likelihood-ratio")),
    # ---------------------------------------------------------------- how good is the sample
    _e("s1", "S1 — top-k precision",
       "Of the k units that respond most to a group on the full data, the share that the sample also ranks "
       "in its own top k: 1 is best.",
       "Query set S1 asks \"which k units respond most to this group?\" ([[top-k]]). Precision 1 means the "
       "sample found all k, 0.5 half of them, 0 none: higher is better. A group the sample does not contain "
       "scores 0 ([[absent-group]]). A layer with at most k units has every unit in both top-k lists, so its "
       "S1 is 1 whatever the sample: the means of (d) leave such a layer out of S1 and show it as trivial.",
       ("top-k", "query-set-accuracy", "absent-group")),
    _e("s2", "S2 — cosine distance of mean activations",
       "How different the sample's pattern of mean activations is from the full data's, from 0 (same "
       "pattern) to 1: lower is better.",
       "Query set S2 asks \"how strongly does each unit respond to this group on average?\" "
       "([[mean-activation]]). The cosine distance compares the two lists of means as directions, ignoring "
       "their overall scale: 0 is the same pattern, 1 nothing in common, and values above 1 (possible only "
       "where activations can be negative, as in the logits) opposite patterns. Lower is better; a group "
       "absent from the sample scores 1.",
       ("mean-activation", "query-set-accuracy", "absent-group")),
    _e("s3", "S3 — Jensen–Shannon distance of the arg-max distribution",
       "How different the sample's distribution of most-active units is from the full data's, from 0 "
       "(identical) to 1 (no overlap): lower is better.",
       "Query set S3 asks \"for how many of this group's items is each unit the most active one?\" "
       "([[arg-max-unit|most active unit]]). The Jensen–Shannon (JS) distance, computed with base-2 logarithms, runs from 0 "
       "for identical distributions to 1 for distributions with no unit in common. Lower is better; a group "
       "absent from the sample scores 1.",
       ("arg-max-unit", "query-set-accuracy", "absent-group")),
    _e("query-set-accuracy", "query-set accuracy",
       "S1, S2 and S3 averaged over every group: how well a sample answers the whole family of diagnosis "
       "questions.",
       "Panel (d) shows it overall (\"all\") and per layer, for the chosen sampler and for the "
       "[[random-baseline]]. Averaging over all [[n-groups|groups]] rewards samples that contain every kind "
       "of item, the rare mistakes included.",
       ("s1", "s2", "s3", "n-groups", "random-baseline")),
    _e("absent-group", "group absent from the sample",
       "A group with items in the full data but none in the sample: the sample cannot answer for it and gets "
       "the worst scores.",
       "It scores S1 = 0, S2 = 1 and S3 = 1, and these count in the averages of panel (d). This is why "
       "samplers that catch rare mistakes score much better than random sampling, which often holds no "
       "misclassified item of some classes.",
       ("group", "s1", "s2", "s3")),
    _e("random-baseline", "random baseline",
       "A uniformly random sample of the same size and seed, scored in the same way, for comparison.",
       "A sampler is worth its cost only if it beats random sampling. Panel (d) and the Table IV row show the "
       "two side by side; one random draw varies from seed to seed, so small differences can be luck. With "
       "the [[random]] sampler chosen, both are the very same sample.",
       ("random", "query-set-accuracy", "table-iv-row")),
    _e("estimator", "estimate (plain mean or design-weighted)",
       "How the sample answers for a group: the plain mean of its items (the default), or a mean weighted by "
       "how many items of the data each one stands for.",
       "A sampler that leans towards the [[decision-boundary]] takes too many boundary items inside each "
       "[[group]]; design weights undo this, each sampled item counting for the items of the "
       "[[full-data|full data]] it stands for. Plain is the default because it measured better: on "
       "Fashion-MNIST weighting lowered the [[max-margin]] sample's S1 at 5 % from 0.642 to 0.534, and it "
       "helped little elsewhere. The [[random-baseline]] stays plain, since random sampling weighs every item "
       "alike.",
       ("query-set-accuracy", "random-baseline", "decision-boundary")),
    _e("sample-estimate", "estimated from the sample alone (error bars)",
       "How far the sample's own answer for a group can be trusted, inferred without the full data: a value "
       "with its 90 % interval.",
       "The sample's items of the [[group]] are drawn again with replacement 200 times and each query set is "
       "answered on every draw: the error bars are the 90 % intervals of each unit's mean and of each bin's "
       "share, and the line under the measured score gives the estimated S1, S2 or S3. It cannot see a "
       "[[decision-boundary|boundary]] sampler's lean inside the group, nor units never active on a sampled "
       "item, so it is optimistic: the score measured against the [[full-data|full data]] is usually worse. "
       "A group with fewer than 2 sample items has none, and it is of the plain mean whatever the "
       "[[estimator|estimate setting]].",
       ("query-set-accuracy", "estimator", "sample")),
    _e("table-iv-row", "Table IV row",
       "The sample's size and how many of its items the model gets right and wrong, as in Table IV of the "
       "report, beside the random sample's.",
       "The report's Table IV counts the correct (incorrect) items in each sampler's 5 % sample, for example "
       "427 (85) for max margin against 499 (1) for uniform sampling on MNIST. More incorrect items means "
       "more of the [[decision-boundary|decision boundaries]]; the row also repeats the overall S1, S2 and "
       "S3.",
       ("sample-accuracy", "random-baseline", "query-set-accuracy")),
    # ---------------------------------------------------------------- the latent view
    _e("projection", "projection",
       "A flattening of the many-dimensional latent space onto a 2-D map so that it can be drawn; some "
       "information is always lost.",
       "The app offers [[umap|UMAP]], [[tsne|t-SNE]] and [[pca|PCA]]. In all three, nearby dots are items "
       "the model finds similar, but the axes have no units, and for UMAP and t-SNE the sizes of clusters and "
       "the gaps between them mean little. The samplers work in the full latent space, not on this map, so "
       "a good sample can look uneven on it.",
       ("latent-space", "umap", "tsne", "pca")),
    _e("umap", "UMAP",
       "A projection that keeps each item's nearest neighbours together, giving well separated clusters.",
       "Uniform Manifold Approximation and Projection (here with 15 neighbours) preserves who is next to whom "
       "and some of the overall layout. The gaps between clusters are not to scale.",
       ("projection", "tsne")),
    _e("tsne", "t-SNE",
       "A projection that keeps each item's nearest neighbours together; good at showing clusters, not the "
       "distances between them.",
       "t-distributed Stochastic Neighbour Embedding (here with perplexity 30) shows who is next to whom. The "
       "sizes of clusters and the space between them are not meaningful.",
       ("projection", "umap")),
    _e("pca", "PCA",
       "A straight-on view along the two directions in which the latent space varies most.",
       "Principal component analysis is a linear projection: what is far apart on the map is far apart in "
       "the latent space, but clusters that are well apart there can overlap on the map. It is the fastest "
       "of the three, and the one shown while the others are still being computed.",
       ("projection", "umap")),
)

#: The line under the estimate control of the SAMPLE section: what the choice does, and why
#: plain is the default (results/WEIGHTING.md).
ESTIMATOR_HINT = ("design-weighted undoes a boundary sampler's lean inside each group; plain is the default: "
                  "it measured better")

#: Every term, in reading order (by :data:`GLOSSARY_TOPICS`), keyed by :attr:`GlossaryEntry.key`.
GLOSSARY: MappingProxyType = MappingProxyType({e.key: e for e in _ENTRIES})

#: (heading, keys) of the glossary's sections, in display order; every key is in exactly one.
GLOSSARY_TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("The data and the model", ("item", "class", "predicted-label", "outcome", "model-accuracy", "confidence",
                                "confusion-matrix", "predicted-as", "layer", "unit", "activation", "unit-mode",
                                "logits", "latent-space", "decision-boundary", "exemplar")),
    ("Groups and the three questions", ("group", "n-groups", "selection", "query-set", "top-k",
                                        "mean-activation", "arg-max-unit")),
    ("Samples and samplers", ("sample", "full-data", "fraction", "seed", "sampler", "sample-accuracy", "j",
                              "likelihood-ratio", "log-likelihood-ratio", "random", "stratified-cm",
                              "latent-grid", "vas", "eb-tree", "gmm-full", "gmm-spherical", "max-margin",
                              "gmm-full-weighted", "gmm-spherical-weighted", "max-margin-weighted")),
    ("How good is the sample", ("s1", "s2", "s3", "query-set-accuracy", "absent-group", "random-baseline",
                                "estimator", "sample-estimate", "table-iv-row")),
    ("The latent view", ("projection", "umap", "tsne", "pca")),
)

# ------------------------------------------------------------------ panels

#: The summary line of every panel's help.
HELP_SUMMARY = "How to read this"

_NOTHING_BETTER = "Nothing is better: it describes the data."

_PANELS = (
    PanelHelp(
        "latent", "Latent space",
        "Every item as a dot on a 2-D map of the model's [[latent-space]], with the [[sample]]'s items drawn "
        "on top in full colour and the rest faded. Colour by true label, predicted label, outcome, sample "
        "membership or one unit's activation.",
        "Items the model finds similar sit together, so clusters are the classes as the model sees them, and "
        "mistakes gather where clusters meet. Hover a dot for its image and [[log-likelihood-ratio]]; draw a "
        "box or lasso to make the items inside the group. The axes and the gaps between clusters carry no "
        "meaning.",
        _NOTHING_BETTER + " Clean, separate clusters mean the model tells the classes apart; mixed regions "
        "show where it confuses them.",
        ("latent-space", "projection", "sample", "selection", "log-likelihood-ratio")),
    PanelHelp(
        "topk", "(a) Top-k units",
        "For the current [[group]] and [[layer]], the [[top-k]] units: those with the highest "
        "[[mean-activation]], on the full data (near-black) and on the sample (the sampler's colour). The title gives "
        "the [[s1|S1 precision]].",
        "Bars are grouped: units in both top-k lists (solid), units of the full data's top k the sample misses "
        "(hatched), and units only the sample ranks (cross-hatched), so the chart can have more than k rows. "
        "Click a bar to colour the latent view by that unit; the chosen unit is marked in every panel. Error "
        "bars and the estimate line are "
        "[[sample-estimate|estimated from the sample alone]], and optimistic.",
        "S1 higher is better: 1 means the sample found all k units, 0 none. Sample bars as long as the full data's "
        "ones are better.",
        ("s1", "top-k", "unit", "mean-activation", "group", "sample-estimate")),
    PanelHelp(
        "heatmap", "(b) Mean-activation maps",
        "The [[mean-activation]] of every unit of the layer for the group, drawn as images: the sample, the "
        "full data, and their difference (sample − full). In units mode a convolution layer is one small map "
        "per channel; other layers, and channels, are a square grid of tiles.",
        "Bright tiles are units that respond strongly to the group; the same picture in the first two images "
        "means the sample reproduces the full data. In the difference, red is where the sample is too high, "
        "blue too low, and white right. The estimate line is [[sample-estimate|estimated from the sample "
        "alone]].",
        "S2 lower is better: 0 means the same pattern, 1 nothing in common. A pale, nearly white difference "
        "image is better.",
        ("s2", "mean-activation", "unit", "unit-mode", "sample-estimate")),
    PanelHelp(
        "argmax", "(c) Arg-max distribution",
        "For each unit, the share of the group's items for which it is the [[arg-max-unit|most active unit]] "
        "of the layer, on the full data (near-black) and on the sample (the sampler's colour). The title gives "
        "[[s3|S3]].",
        "Long bars are the layer's dominant detectors for the group. Only the most frequent units that fit are "
        "drawn, each as a share of all the group's items; the line under the chart says what share the units "
        "left out hold. Bar pairs of equal length mean the sample reproduces the distribution; error bars "
        "and the estimate line are [[sample-estimate|estimated from the sample alone]].",
        "S3 lower is better: 0 means identical distributions, 1 no unit in common.",
        ("s3", "arg-max-unit", "unit", "unit-mode", "sample-estimate")),
    PanelHelp(
        "summary", "(d) Query-set accuracy of the sample vs random",
        "How well this sample answers the three [[query-set|query sets]] over all [[n-groups|groups]], next "
        "to a random sample of the same size: S1, S2 and S3, overall (\"all\") and per layer.",
        "Each pair of bars is the chosen sampler's score and the [[random-baseline]]'s. The [[table-iv-row]] "
        "below counts the correct and incorrect items in each sample.",
        "S1 higher, S2 and S3 lower are better. A sampler is worth using when it beats random; groups the "
        "sample misses count as the worst score ([[absent-group]]), so samplers that catch rare mistakes win.",
        ("query-set-accuracy", "s1", "s2", "s3", "n-groups", "random-baseline", "table-iv-row")),
    PanelHelp(
        "confusion", "(e) Confusion matrix",
        "For all items, how many of each true class (rows) the model predicted as each class (columns). The "
        "colour is the full data's count on a logarithmic scale; each cell shows the full count and, below, "
        "the sample's.",
        "The diagonal holds the correct predictions; every other cell is one kind of mistake. Click a cell to "
        "make \"a predicted as b\" the group. A boundary-seeking sample's own accuracy is low by design "
        "([[sample-accuracy]]).",
        "For the model, more on the diagonal is better ([[model-accuracy]]). For the sample nothing is "
        "better: its counts show where its items come from, and counts in error cells show that it found the "
        "mistakes.",
        ("confusion-matrix", "predicted-as", "model-accuracy", "sample-accuracy")),
    PanelHelp(
        "gallery", "Group gallery",
        "The items of the current [[group]] as images, each with its true label, [[predicted-label|prediction]] "
        "and [[confidence]]; the [[sample]]'s members come first, the rest of the group on demand.",
        "Look for what the items have in common: a group of mistakes (shirts predicted as T-shirts, say) often "
        "shows ambiguous, mislabelled or unusual inputs. Confident mistakes are the most telling.",
        _NOTHING_BETTER,
        ("group", "predicted-as", "confidence", "sample")),
)

#: The "how to read this" of every panel, keyed by panel name.
PANEL_HELP: MappingProxyType = MappingProxyType({p.key: p for p in _PANELS})
#: The panels that have help, in the order a → e after the latent view, then the gallery.
PANEL_KEYS: tuple[str, ...] = ("latent", "topk", "heatmap", "argmax", "summary", "confusion", "gallery")

# ------------------------------------------------------------------ lookups and text


def _unknown(kind: str, key, known) -> ValueError:
    return ValueError(f"unknown {kind} key {key!r}; known keys: {', '.join(map(repr, known))}")


def entry(key: str) -> GlossaryEntry:
    """The glossary entry of ``key``.

    Raises
    ------
    ValueError
        If ``key`` is not in :data:`GLOSSARY` (the message names it and lists the known keys).
    """
    try:
        return GLOSSARY[key]
    except (KeyError, TypeError):
        raise _unknown("glossary", key, GLOSSARY) from None


def tooltip(key: str) -> str:
    """The one-sentence definition of ``key`` (for a ``title`` attribute or an option's ``title``)."""
    return entry(key).short


_LINK = re.compile(r"\[\[([^\]|]+)(?:\|([^\]]+))?\]\]")


def plain_text(text: str) -> str:
    """``text`` with its ``[[key]]`` / ``[[key|shown]]`` links replaced by their words.

    >>> plain_text("see [[s1]] and [[top-k|the top units]]")
    'see S1 — top-k precision and the top units'
    """
    return _LINK.sub(lambda m: m.group(2) or entry(m.group(1)).term, text)


def rich_text(text: str) -> list:
    """``text`` as dash children: plain strings and a :func:`term` link for each ``[[key]]``."""
    out: list = []
    pos = 0
    for m in _LINK.finditer(text):
        if m.start() > pos:
            out.append(text[pos:m.start()])
        out.append(term(m.group(1), m.group(2)))
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def links_in(text: str) -> tuple[str, ...]:
    """The keys that ``text`` links with ``[[key]]``, in order of appearance."""
    return tuple(m.group(1) for m in _LINK.finditer(text))


# ------------------------------------------------------------------ components


def anchor_id(key: str) -> str:
    """The id of ``key``'s entry in :func:`glossary_section` (``glossary-<key>``)."""
    return f"glossary-{entry(key).key}"


def term(key: str, text: str | None = None) -> html.A:
    """An inline link to the glossary entry of ``key`` with its definition as hover tooltip.

    Parameters
    ----------
    key : str
        A key of :data:`GLOSSARY`.
    text : str, optional
        What the link shows; default: the entry's display name.

    Returns
    -------
    html.A
        ``<a class="term" href="#glossary-<key>" title="<short definition>">text</a>``.

    Raises
    ------
    ValueError
        If ``key`` is unknown.
    """
    e = entry(key)
    return html.A(e.term if text is None else text, href=f"#{anchor_id(key)}", title=e.short, className="term")


def _see_line(keys) -> html.P:
    children: list = ["See also: "]
    for i, k in enumerate(keys):
        if i:
            children.append(", ")
        children.append(term(k))
    children.append(".")
    return html.P(children, className="glossary-see")


def glossary_section(*, title: str = "Glossary") -> html.Section:
    """The whole glossary: a section ``#glossary`` with one ``html.Dl`` per topic.

    Each entry is a ``Dt`` (id ``glossary-<key>``, the anchor of :func:`term` links) and a ``Dd``
    with the short definition, the long one (its links rendered) and its "see also" links.
    """
    children: list = [
        html.H2(title, className="glossary-title"),
        html.P("The terms marked on the page link here; hover one for its one-line definition.",
               className="glossary-lead"),
    ]
    for heading, keys in GLOSSARY_TOPICS:
        items: list = []
        for key in keys:
            e = GLOSSARY[key]
            dd = [html.P(e.short, className="glossary-short"),
                  html.P(rich_text(e.long), className="glossary-long")]
            if e.see:
                dd.append(_see_line(e.see))
            items.append(html.Dt(e.term, id=anchor_id(key), className="glossary-term"))
            items.append(html.Dd(dd, className="glossary-def"))
        children.append(html.H3(heading, className="glossary-topic"))
        children.append(html.Dl(items, className="glossary-list"))
    return html.Section(children, id="glossary", className="glossary")


def panel_help(key: str, *, open: bool = False) -> html.Details:  # noqa: A002 - the HTML attribute
    """A compact "How to read this" disclosure for a panel.

    Parameters
    ----------
    key : str
        One of :data:`PANEL_KEYS`.
    open : bool
        Whether it starts unfolded.

    Returns
    -------
    html.Details
        ``Summary`` ("How to read this"), then three labelled paragraphs (what it shows, how to read
        it, which way is better) and a line of links to the glossary's terms.

    Raises
    ------
    ValueError
        If ``key`` is not a panel with help (the message names it and lists the known ones).
    """
    try:
        p = PANEL_HELP[key]
    except (KeyError, TypeError):
        raise _unknown("panel", key, PANEL_HELP) from None
    rows = [("What it shows", p.shows, "help-shows"), ("How to read it", p.read, "help-read"),
            ("Which way is better", p.better, "help-better")]
    body: list = [html.P([html.Strong(label + ": "), *rich_text(text)], className=cls)
                  for label, text, cls in rows]
    if p.see:
        terms: list = [html.Strong("Terms: ")]
        for i, k in enumerate(p.see):
            if i:
                terms.append(" · ")
            terms.append(term(k))
        body.append(html.P(terms, className="help-terms"))
    return html.Details([html.Summary(HELP_SUMMARY, className="panel-help-summary"),
                         html.Div(body, className="panel-help-body")],
                        open=open, className="panel-help", id=f"{key}-help")


# ------------------------------------------------------------------ phrases


def _pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def accuracy_phrase(model_accuracy: float, sample_accuracy: float | None = None) -> str:
    """The model's accuracy and, if given, the sample's, worded so that nobody reads the second
    as the model's.

    >>> print(accuracy_phrase(0.907, 0.636))
    model accuracy 90.7 % on all items · the sample's items are 63.6 % correct (a property of the sample, not of the model)
    """
    text = f"model accuracy {_pct(model_accuracy)} on all items"
    if sample_accuracy is not None:
        text += (f" · the sample's items are {_pct(sample_accuracy)} correct "
                 "(a property of the sample, not of the model)")
    return text
