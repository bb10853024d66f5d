package strom.peer;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.ConvolutionMode;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.conf.graph.ElementWiseVertex;
import org.deeplearning4j.nn.conf.graph.L2NormalizeVertex;
import org.deeplearning4j.nn.conf.graph.MergeVertex;
import org.deeplearning4j.nn.conf.graph.ScaleVertex;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.ActivationLayer;
import org.deeplearning4j.nn.conf.layers.BatchNormalization;
import org.deeplearning4j.nn.conf.layers.ConvolutionLayer;
import org.deeplearning4j.nn.conf.layers.DenseLayer;
import org.deeplearning4j.nn.conf.layers.EmbeddingSequenceLayer;
import org.deeplearning4j.nn.conf.layers.GlobalPoolingLayer;
import org.deeplearning4j.nn.conf.layers.LSTM;
import org.deeplearning4j.nn.conf.layers.LocalResponseNormalization;
import org.deeplearning4j.nn.conf.layers.OutputLayer;
import org.deeplearning4j.nn.conf.layers.RnnOutputLayer;
import org.deeplearning4j.nn.conf.layers.PoolingType;
import org.deeplearning4j.nn.conf.layers.SubsamplingLayer;
import org.deeplearning4j.nn.weights.WeightInit;
import org.nd4j.linalg.activations.Activation;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.lossfunctions.LossFunctions.LossFunction;

/** The network configurations shared by {@link Bench} and {@link Fixtures}. */
final class Models {
  private Models() {}

  private static NeuralNetConfiguration.Builder base(IUpdater updater, long seed, double l2) {
    NeuralNetConfiguration.Builder b = new NeuralNetConfiguration.Builder()
        .seed(seed)
        .dataType(DataType.FLOAT)
        .updater(updater)
        .weightInit(WeightInit.RELU)
        .trainingWorkspaceMode(WorkspaceMode.ENABLED)
        .inferenceWorkspaceMode(WorkspaceMode.ENABLED);
    if (l2 > 0) {
      b.l2(l2);
    }
    return b;
  }

  /** 784-256-128-10, ReLU hidden, softmax + MCXENT output, He init. Fed [n,784]. */
  static MultiLayerConfiguration mlp(IUpdater updater, long seed, double l2) {
    return base(updater, seed, l2).list()
        .layer(new DenseLayer.Builder().nIn(784).nOut(256).activation(Activation.RELU).build())
        .layer(new DenseLayer.Builder().nIn(256).nOut(128).activation(Activation.RELU).build())
        .layer(new OutputLayer.Builder(LossFunction.MCXENT).nIn(128).nOut(10)
            .activation(Activation.SOFTMAX).build())
        .build();
  }

  /**
   * Strom's `cnn` preset: conv3x3x32 same relu, maxpool 2/2, conv3x3x64 same relu, maxpool 2/2,
   * dense 128 relu, softmax 10. 421,642 parameters. Fed [n,1,28,28] (NCHW).
   */
  static MultiLayerConfiguration cnn(IUpdater updater, long seed, double l2) {
    return base(updater, seed, l2).list()
        .layer(new ConvolutionLayer.Builder(3, 3).nIn(1).nOut(32).stride(1, 1)
            .convolutionMode(ConvolutionMode.Same).activation(Activation.RELU).build())
        .layer(new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.MAX)
            .kernelSize(2, 2).stride(2, 2).build())
        .layer(new ConvolutionLayer.Builder(3, 3).nOut(64).stride(1, 1)
            .convolutionMode(ConvolutionMode.Same).activation(Activation.RELU).build())
        .layer(new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.MAX)
            .kernelSize(2, 2).stride(2, 2).build())
        .layer(new DenseLayer.Builder().nOut(128).activation(Activation.RELU).build())
        .layer(new OutputLayer.Builder(LossFunction.MCXENT).nOut(10)
            .activation(Activation.SOFTMAX).build())
        .setInputType(InputType.convolutional(28, 28, 1))
        .build();
  }

  /**
   * LeNet-like, with layer types Strom lacks (LocalResponseNormalization) next to ones it has
   * (BatchNormalization, dropout on a dense layer, average pooling).
   */
  static MultiLayerConfiguration lenet(IUpdater updater, long seed) {
    return base(updater, seed, 5e-4).list()
        .layer(new ConvolutionLayer.Builder(5, 5).nIn(1).nOut(20).stride(1, 1)
            .activation(Activation.IDENTITY).build())
        .layer(new LocalResponseNormalization.Builder().k(2).n(5).alpha(1e-4).beta(0.75).build())
        .layer(new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.MAX)
            .kernelSize(2, 2).stride(2, 2).build())
        .layer(new ConvolutionLayer.Builder(5, 5).nOut(50).stride(1, 1)
            .activation(Activation.IDENTITY).build())
        // DL4J's global default activation is sigmoid, and BatchNormalization applies its
        // activation: name it (here relu after the normalization).
        .layer(new BatchNormalization.Builder().activation(Activation.RELU).build())
        .layer(new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.AVG)
            .kernelSize(2, 2).stride(2, 2).build())
        .layer(new DenseLayer.Builder().nOut(500).activation(Activation.RELU).dropOut(0.5).build())
        .layer(new OutputLayer.Builder(LossFunction.NEGATIVELOGLIKELIHOOD).nOut(10)
            .activation(Activation.SOFTMAX).build())
        .setInputType(InputType.convolutionalFlat(28, 28, 1))
        .build();
  }

  /** A sequence model made only of layer types Strom lacks: embedding, LSTM, RNN output. */
  static MultiLayerConfiguration lstm(IUpdater updater, long seed) {
    return base(updater, seed, 0).list()
        // No setInputType: it would overwrite the embedding's nIn (vocabulary size) with 1.
        .layer(new EmbeddingSequenceLayer.Builder().nIn(1000).nOut(64).inputLength(20).build())
        .layer(new LSTM.Builder().nIn(64).nOut(128).activation(Activation.TANH).build())
        .layer(new RnnOutputLayer.Builder(LossFunction.MCXENT).nIn(128).nOut(10)
            .activation(Activation.SOFTMAX).build())
        .build();
  }

  /**
   * Classification of sequences: an LSTM of 32 over 3 features per step, max pooling over time,
   * a softmax over 2 classes (one label per sequence). Fed [n,3,T] (NCW).
   */
  static MultiLayerConfiguration sequenceClassifier(IUpdater updater, long seed) {
    return base(updater, seed, 0).list()
        .layer(new LSTM.Builder().nOut(32).activation(Activation.TANH).build())
        .layer(new GlobalPoolingLayer.Builder(PoolingType.MAX).build())
        .layer(new OutputLayer.Builder(LossFunction.MCXENT).nOut(2).activation(Activation.SOFTMAX).build())
        .setInputType(InputType.recurrent(3))
        .build();
  }

  private static ConvolutionLayer conv(int k, int out, int stride, Activation act) {
    return new ConvolutionLayer.Builder(k, k).nOut(out).stride(stride, stride)
        .convolutionMode(ConvolutionMode.Same).activation(act).build();
  }

  private static BatchNormalization bn(Activation act) {
    return new BatchNormalization.Builder().activation(act).build();
  }

  /**
   * A small residual ComputationGraph: a stem, an identity block (conv-bn-relu, conv-bn, add the
   * block's input, relu), a downsampling block whose shortcut is a strided 1x1 projection, global
   * average pooling and a softmax output. Fed [n,1,28,28] (NCHW).
   */
  static ComputationGraphConfiguration residual(IUpdater updater, long seed) {
    return base(updater, seed, 0).graphBuilder()
        .addInputs("input")
        .setInputTypes(InputType.convolutional(28, 28, 1))
        .addLayer("stem", conv(3, 16, 1, Activation.IDENTITY), "input")
        .addLayer("stem_bn", bn(Activation.RELU), "stem")
        .addLayer("pool", new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.MAX)
            .kernelSize(2, 2).stride(2, 2).build(), "stem_bn")
        .addLayer("a1", conv(3, 16, 1, Activation.IDENTITY), "pool")
        .addLayer("a1_bn", bn(Activation.RELU), "a1")
        .addLayer("a2", conv(3, 16, 1, Activation.IDENTITY), "a1_bn")
        .addLayer("a2_bn", bn(Activation.IDENTITY), "a2")
        .addVertex("a_add", new ElementWiseVertex(ElementWiseVertex.Op.Add), "a2_bn", "pool")
        .addLayer("a_out", new ActivationLayer.Builder().activation(Activation.RELU).build(), "a_add")
        .addLayer("b1", conv(3, 32, 2, Activation.IDENTITY), "a_out")
        .addLayer("b1_bn", bn(Activation.RELU), "b1")
        .addLayer("b2", conv(3, 32, 1, Activation.IDENTITY), "b1_bn")
        .addLayer("b2_bn", bn(Activation.IDENTITY), "b2")
        .addLayer("b_proj", conv(1, 32, 2, Activation.IDENTITY), "a_out")
        .addVertex("b_add", new ElementWiseVertex(ElementWiseVertex.Op.Add), "b2_bn", "b_proj")
        .addLayer("b_out", new ActivationLayer.Builder().activation(Activation.RELU).build(), "b_add")
        .addLayer("gap", new GlobalPoolingLayer.Builder(PoolingType.AVG).build(), "b_out")
        .addLayer("out", new OutputLayer.Builder(LossFunction.MCXENT).nOut(10)
            .activation(Activation.SOFTMAX).build(), "gap")
        .setOutputs("out")
        .build();
  }

  /**
   * Two branches merged along channels (Inception style): a 1x1 and a 3x3 convolution of the
   * input, concatenated (MergeVertex), pooled, then a dense layer (DL4J inserts a
   * CnnToFeedForwardPreProcessor) and a softmax output. Fed [n,1,28,28] (NCHW).
   */
  static ComputationGraphConfiguration merge(IUpdater updater, long seed) {
    return base(updater, seed, 0).graphBuilder()
        .addInputs("input")
        .setInputTypes(InputType.convolutional(28, 28, 1))
        .addLayer("left", conv(1, 8, 1, Activation.RELU), "input")
        .addLayer("right", conv(3, 16, 1, Activation.RELU), "input")
        .addVertex("merged", new MergeVertex(), "left", "right")
        .addLayer("pool", new SubsamplingLayer.Builder(SubsamplingLayer.PoolingType.MAX)
            .kernelSize(2, 2).stride(2, 2).build(), "merged")
        .addLayer("hidden", new DenseLayer.Builder().nOut(64).activation(Activation.RELU).build(),
            "pool")
        .addLayer("out", new OutputLayer.Builder(LossFunction.MCXENT).nOut(10)
            .activation(Activation.SOFTMAX).build(), "hidden")
        .setOutputs("out")
        .build();
  }

  /**
   * A graph with vertices and a layer Strom lacks (a product, a scale, an L2 normalisation and a
   * local response normalisation) next to ones it has: the importer lists them all at once.
   */
  static ComputationGraphConfiguration graphLacks(IUpdater updater, long seed) {
    return base(updater, seed, 0).graphBuilder()
        .addInputs("input")
        .setInputTypes(InputType.convolutional(28, 28, 1))
        .addLayer("c", conv(3, 8, 1, Activation.RELU), "input")
        .addLayer("lrn", new LocalResponseNormalization.Builder().build(), "c")
        .addVertex("prod", new ElementWiseVertex(ElementWiseVertex.Op.Product), "c", "lrn")
        .addVertex("scaled", new ScaleVertex(0.5), "prod")
        .addLayer("gap", new GlobalPoolingLayer.Builder(PoolingType.AVG).build(), "scaled")
        .addVertex("l2", new L2NormalizeVertex(), "gap")
        .addLayer("out", new OutputLayer.Builder(LossFunction.MCXENT).nOut(10)
            .activation(Activation.SOFTMAX).build(), "l2")
        .setOutputs("out")
        .build();
  }
}
